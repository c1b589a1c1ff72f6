"""stethoscope-house: the house from the console, on SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import select

from stethoscope.audit.models import AuditEvent
from stethoscope.registry.models import Badge, Beacon, Room, Site
from stethoscope.scripts import house


def events(db) -> list[tuple]:
    db.rollback()
    return [
        (e.action, e.actor, e.actor_type, e.target)
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]


def ok(ini, capsys, *argv) -> str:
    assert house.main([ini, *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def fails(ini, capsys, *argv) -> str:
    assert house.main([ini, *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


ROSE = ("--site", "rose")
SITE = ("site", "add", "rose", "--name", "Rose House", "--timezone", "Europe/London")
HALL = ("room", "add", "hall", *ROSE, "--name", "Hall", "--floor", "0")


@pytest.fixture
def rose(ini, capsys):
    """Site rose with a hall and a lounge (a door between them)."""
    ok(ini, capsys, *SITE)
    ok(ini, capsys, *HALL)
    ok(
        ini,
        capsys,
        "room",
        "add",
        "lounge",
        *ROSE,
        "--name",
        "Lounge",
        "--door",
        "hall",
    )
    return ini


def test_a_house_built_from_the_console(ini, db, capsys):
    assert ok(ini, capsys, *SITE) == "added site rose (Rose House, Europe/London)\n"
    ok(ini, capsys, *HALL)
    out = ok(
        ini, capsys, "room", "add", "lounge", "--site", "rose", "--name",
        "Lounge", "--floor", "1", "--door", "hall",
    )  # fmt: skip
    assert out == "added room lounge (Lounge) to site rose; doors to: hall\n"
    assert (
        ok(
            ini,
            capsys,
            "beacon",
            "add",
            "b-1",
            "--room",
            "lounge",
            "--label",
            "by the TV",
        )
        == "added beacon b-1 in room lounge\n"
    )
    assert (
        ok(ini, capsys, "badge", "add", "B1", "--site", "rose", "--wearer", "Mrs Smith")
        == "added badge B1 at site rose\n"
    )

    db.rollback()
    assert db.get(Site, "rose").timezone == "Europe/London"
    lounge = db.get(Room, "lounge")
    assert (lounge.floor, [r.id for r in lounge.adjacent]) == (1, ["hall"])
    assert [r.id for r in db.get(Room, "hall").adjacent] == ["lounge"]
    assert db.get(Beacon, "b-1").room_id == "lounge"
    badge = db.get(Badge, "B1")
    assert (badge.site_id, badge.wearer, badge.active) == ("rose", "Mrs Smith", True)
    assert events(db) == [
        ("site.create", "console:matron", "console", "rose"),
        ("room.create", "console:matron", "console", "hall"),
        ("room.create", "console:matron", "console", "lounge"),
        ("beacon.create", "console:matron", "console", "b-1"),
        ("badge.create", "console:matron", "console", "B1"),
    ]
    # The wearer's name is personal: never in the audit log.
    db.rollback()
    assert "Smith" not in json.dumps(
        [e.details for e in db.scalars(select(AuditEvent))]
    )

    rooms = ok(ini, capsys, "room", "list").splitlines()
    assert rooms[0].split() == [
        "id", "name", "site", "floor", "max", "stay", "doors", "to",
    ]  # fmt: skip
    assert rooms[1].split() == ["hall", "Hall", "rose", "0", "-", "lounge"]
    assert rooms[2].split() == ["lounge", "Lounge", "rose", "1", "-", "hall"]
    assert ok(ini, capsys, "site", "list").splitlines()[1].split() == [
        "rose", "Rose", "House", "Europe/London",
    ]  # fmt: skip
    beacons = ok(ini, capsys, "beacon", "list", *ROSE).splitlines()
    assert beacons[1].split() == ["b-1", "lounge", "by", "the", "TV", "never"]
    assert ok(ini, capsys, "badge", "list").splitlines()[1].split() == [
        "B1", "rose", "Mrs", "Smith", "yes", "never",
    ]  # fmt: skip


def test_a_room_s_max_stay(rose, db, capsys):
    ok(rose, capsys, "room", "add", "bath", *ROSE, "--name", "Bath", "--max-stay", "30")
    db.rollback()
    assert db.get(Room, "bath").max_stay_minutes == 30
    assert ok(rose, capsys, "room", "list").splitlines()[1].split() == [
        "bath", "Bath", "rose", "30",
    ]  # fmt: skip

    out = ok(rose, capsys, "room", "change", "hall", "--max-stay", "1440")
    assert out == "changed room hall: max_stay_minutes\n"
    out = ok(rose, capsys, "room", "change", "hall", "--max-stay", "1440")
    assert out == "room hall is already so; nothing changed\n"
    db.rollback()
    assert (db.get(Room, "hall").max_stay_minutes, db.get(Room, "hall").floor) == (
        1440,
        0,
    )
    ok(rose, capsys, "room", "change", "hall", "--max-stay", "none", "--floor", "1")
    db.rollback()
    assert (db.get(Room, "hall").max_stay_minutes, db.get(Room, "hall").floor) == (
        None,
        1,
    )
    assert [e[0] for e in events(db) if e[3] in ("bath", "hall")][-3:] == [
        "room.create",
        "room.update",
        "room.update",
    ]


def test_empty_lists_say_so(ini, capsys):
    assert "no sites yet" in ok(ini, capsys, "site", "list")
    assert ok(ini, capsys, "room", "list") == "no rooms\n"
    assert ok(ini, capsys, "beacon", "list") == "no beacons\n"
    assert ok(ini, capsys, "badge", "list") == "no badges\n"


def test_a_badge_heard_before_is_described(rose, db, capsys):
    ok(rose, capsys, "badge", "add", "B1", "--site", "rose")
    out = ok(rose, capsys, "badge", "add", "B1", "--site", "rose", "--wearer", "Ann")
    assert out == "badge B1 was known; changed wearer\n"
    out = ok(rose, capsys, "badge", "add", "B1", "--site", "rose", "--wearer", "Ann")
    assert out == "badge B1 is already so; nothing changed\n"
    assert [e[0] for e in events(db) if e[3] == "B1"] == [
        "badge.create",
        "badge.update",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["site", "add", "rose", "--name", "Again", "--timezone", "UTC"],
            "exists already",
        ),  # fmt: skip
        (
            ["site", "add", "oak", "--name", "Oak", "--timezone", "Mars/Olympus"],
            "timezone: must be an IANA timezone",
        ),  # fmt: skip
        (
            ["room", "add", "attic", "--site", "nowhere", "--name", "Attic"],
            "site: no site 'nowhere'",
        ),  # fmt: skip
        (
            [
                "room",
                "add",
                "attic",
                "--site",
                "rose",
                "--name",
                "Attic",
                "--floor",
                "x",
            ],
            "floor: must be a whole number",
        ),  # fmt: skip
        (
            [
                "room",
                "add",
                "attic",
                "--site",
                "rose",
                "--name",
                "Attic",
                "--door",
                "cellar",
            ],
            "adjacent: no room 'cellar'",
        ),  # fmt: skip
        (["beacon", "add", "b 1"], "id: "),
        (["beacon", "add", "b-9", "--room", "cellar"], "room: no room 'cellar'"),
        (["badge", "add", "B1", "--site", "nowhere"], "site: no site 'nowhere'"),
        (["room", "list", "--site", "nowhere"], "site: no site 'nowhere'"),
        (
            ["room", "add", "attic", *ROSE, "--name", "Attic", "--max-stay", "0"],
            "max_stay_minutes: Input should be greater than or equal to 1",
        ),  # fmt: skip
        (
            ["room", "change", "hall", "--max-stay", "1441"],
            "max_stay_minutes: Input should be less than or equal to 1440",
        ),  # fmt: skip
        (["room", "change", "attic", "--max-stay", "10"], "no room 'attic'"),
    ],
)
def test_refusals_change_nothing(rose, db, capsys, argv, message):
    before = events(db)
    err = fails(rose, capsys, *argv)
    assert err.startswith("error: ") and message in err
    assert events(db) == before


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_export_and_import_round_trip(rose, db, tmp_path, capsys, suffix):
    ok(rose, capsys, "beacon", "add", "b-1", "--room", "lounge", "--label", "=1+1")
    rooms = tmp_path / f"rooms.{suffix}"
    beacons = tmp_path / f"beacons.{suffix}"
    assert ok(rose, capsys, "export", str(rooms)) == f"{rooms}: 2 rooms\n"
    assert ok(rose, capsys, "export", str(beacons)) == f"{beacons}: 1 beacons\n"
    if suffix == "csv":
        # The web export's CSV: a formula-like cell is written as text.
        assert rooms.read_text().splitlines()[0] == (
            "id,name,site,floor,max_stay_minutes,adjacent"
        )
        assert "'=1+1" in beacons.read_text()
    else:
        assert json.loads(rooms.read_text())["rooms"][1] == {
            "id": "lounge",
            "name": "Lounge",
            "site": "rose",
            "floor": None,
            "max_stay_minutes": None,
            "adjacent": ["hall"],
        }

    # Edited and imported back: one room renamed, one added.
    text = rooms.read_text().replace("Lounge", "Big lounge")
    if suffix == "csv":
        text += "kitchen,Kitchen,rose,0,,hall\r\n"
    else:
        data = json.loads(text)
        data["rooms"].append(
            {
                "id": "kitchen",
                "name": "Kitchen",
                "site": "rose",
                "floor": 0,
                "adjacent": ["hall"],
            }  # fmt: skip
        )
        text = json.dumps(data)
    rooms.write_text(text)
    assert ok(rose, capsys, "import", str(rooms)) == (
        # The hall is updated too: it has a door to the kitchen now.
        f"imported {rooms} (rooms): 1 created, 2 updated, 0 unchanged\n"
    )
    assert ok(rose, capsys, "import", str(beacons)) == (
        f"imported {beacons} (beacons): 0 created, 0 updated, 1 unchanged\n"
    )
    db.rollback()
    assert db.get(Room, "lounge").name == "Big lounge"
    assert sorted(r.id for r in db.get(Room, "hall").adjacent) == ["kitchen", "lounge"]
    assert db.get(Beacon, "b-1").label == "=1+1"
    assert [e[:2] for e in events(db)][-2:] == [
        ("room.import", "console:matron"),
        ("beacon.import", "console:matron"),
    ]


def test_the_kind_comes_from_the_option_or_a_json_key(rose, db, tmp_path, capsys):
    export = tmp_path / "house.json"
    assert "rooms or beacons?" in fails(rose, capsys, "export", str(export))
    ok(rose, capsys, "export", str(export), "--kind", "rooms", "--site", "rose")
    assert ok(rose, capsys, "import", str(export)).startswith(
        f"imported {export} (rooms): 0 created, 0 updated, 2 unchanged"
    )


def test_a_bad_import_file_imports_nothing(rose, db, tmp_path, capsys):
    path = tmp_path / "rooms.csv"
    path.write_text(
        "id,name,site,floor,adjacent\nattic,Attic,rose,9,\ncellar,,rose,x,\n"
    )
    err = fails(rose, capsys, "import", str(path))
    assert "line 3.name" in err and "line 3.floor" in err
    db.rollback()
    assert db.get(Room, "attic") is None
    assert "room.import" not in [e[0] for e in events(db)]


@pytest.mark.parametrize(
    ("name", "message"),
    [("rooms.txt", "must end in .csv or .json"), ("missing/rooms.csv", "cannot read")],
)
def test_files_it_cannot_use(rose, tmp_path, capsys, name, message):
    assert message in fails(rose, capsys, "import", str(tmp_path / name))
