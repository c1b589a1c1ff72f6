"""stethoscope-simulate: setup, csv and live, on SQLite and PostgreSQL."""

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.ingest.models import Reading
from stethoscope.labels.csvio import LabelledRow, read_rows
from stethoscope.labels.models import TrainingRun
from stethoscope.registry.models import Badge, Beacon, Gateway, Room, Site
from stethoscope.scripts import gateways as gateway_script
from stethoscope.scripts import labelled_import
from stethoscope.scripts import simulate as simulate_script
from stethoscope.simulate.house import demo_house
from tests.support.servers import ThreadedServer


def count(engine, model, *where) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def serve(make_app):
    """serve(**settings) -> URL of the app served by waitress on a thread."""
    servers = []

    def start(**overrides):
        servers.append(ThreadedServer(make_app.wsgi(**overrides)))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


def final_counts(output: str) -> dict[str, int]:
    line = [line for line in output.splitlines() if "stopped after" in line][-1]
    numbers = {
        name: int(value.replace(",", ""))
        for value, name in re.findall(
            r"([\d,]+) (posts|stored|duplicates|rejected)", line
        )
    }
    return numbers


def test_setup_creates_the_house_and_is_idempotent(ini, engine, capsys):
    house = demo_house()
    assert simulate_script.main(["setup", ini]) == 0
    out = capsys.readouterr().out
    assert "rooms: 9 created" in out
    with Session(engine) as session:
        site = session.get(Site, "demo")
        assert site.name == "Demo care home"
        assert site.timezone == "Europe/London"
        rooms = {room.id: room for room in session.scalars(select(Room))}
        assert set(rooms) == {room.id for room in house.rooms}
        for room in house.rooms:
            stored = rooms[room.id]
            assert (stored.name, stored.floor, stored.site_id) == (
                room.name,
                room.floor,
                "demo",
            )
            assert [r.id for r in stored.adjacent] == house.adjacent[room.id]
        beacons = {b.id: b.room_id for b in session.scalars(select(Beacon))}
        assert beacons == {b.id: b.room_id for b in house.beacons}
        gateways = {g.id: (g.name, g.site_id) for g in session.scalars(select(Gateway))}
        assert gateways == {g.id: (g.name, "demo") for g in house.gateways}
        badges = {b.id: (b.wearer, b.site_id) for b in session.scalars(select(Badge))}
        assert badges == {
            badge_id: (f"Demo resident {n}", "demo")
            for n, badge_id in enumerate(house.badge_ids(6), start=1)
        }
    assert count(engine, AuditEvent, AuditEvent.action == "simulate.setup") == 1

    assert simulate_script.main(["setup", ini]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert count(engine, Room) == 9
    assert count(engine, Badge) == 6
    assert count(engine, AuditEvent, AuditEvent.action == "simulate.setup") == 1


def test_setup_puts_back_what_was_changed(ini, engine, capsys):
    assert simulate_script.main(["setup", ini]) == 0
    with Session(engine) as session, session.begin():
        session.get(Beacon, "bcn-kitchen").room_id = "demo-hall"
    assert simulate_script.main(["setup", ini, "--badges", "8"]) == 0
    out = capsys.readouterr().out
    assert "beacons: 0 created, 1 updated, 9 unchanged" in out
    assert "badges: 2 created, 0 updated, 6 unchanged" in out
    assert count(engine, Beacon, Beacon.room_id == "demo-kitchen") == 1


def test_setup_reports_a_bad_ini(tmp_path, capsys):
    assert simulate_script.main(["setup", str(tmp_path / "missing.ini")]) == 2
    assert "error:" in capsys.readouterr().err


def test_csv_is_importable(ini, engine, tmp_path, capsys):
    assert simulate_script.main(["setup", ini]) == 0
    path = tmp_path / "simulated.csv"
    assert (
        simulate_script.main(
            ["csv", str(path), "--readings", "3000", "--seed", "3", "--badges", "6"]
        )
        == 0
    )
    assert labelled_import.main([ini, str(path), "--site", "demo"]) == 0
    out = capsys.readouterr().out
    assert "errors: 0" in out
    assert count(engine, Reading) == 3000
    runs = count(engine, TrainingRun)
    assert runs > 6  # every badge changed room at least once in 4 hours
    with Session(engine) as session:
        labels = set(session.scalars(select(TrainingRun.room_id).distinct()))
    assert labels <= {room.id for room in demo_house().rooms}


def test_live_stores_readings_and_gets_duplicates(serve, engine, capsys):
    house = demo_house()
    url = serve()
    status = simulate_script.main(
        ["live", url, "--duration", "30", "--speed", "15", "--seed", "2"]
    )
    assert status == 0
    counts = final_counts(capsys.readouterr().out)
    stored = count(engine, Reading)
    assert counts["stored"] == stored
    # Six badges, an update every 5 s for 30 s; a gateway's duplicates of
    # each (every second, and from every other gateway) are refused.
    assert 0 < stored <= 36
    assert counts["duplicates"] > stored
    assert counts["posts"] == counts["stored"] + counts["duplicates"]
    with Session(engine) as session:
        readings = list(session.scalars(select(Reading)))
    assert {r.badge_id for r in readings} <= set(house.badge_ids(6))
    assert {r.gateway_id for r in readings} <= {g.id for g in house.gateways}
    assert all(0 < len(r.beacons) <= 8 for r in readings)


def test_live_sends_gateway_tokens(ini, serve, engine, capsys):
    house = demo_house()
    url = serve(**{"stethoscope.ingest.require_token": "true"})
    tokens = []
    for gateway in house.gateways:
        assert gateway_script.main([ini, "token", "create", gateway.id]) == 0
        token = re.search(r"Bearer (\S+)", capsys.readouterr().out).group(1)
        tokens += ["--token", f"{gateway.id}={token}"]

    args = ["live", url, "--duration", "10", "--speed", "10"]
    assert simulate_script.main(args) == 0
    refused = final_counts(capsys.readouterr().out)
    assert refused["rejected"] == refused["posts"] > 0
    assert count(engine, Reading) == 0

    assert simulate_script.main([*args, *tokens]) == 0
    counts = final_counts(capsys.readouterr().out)
    assert counts["rejected"] == 0
    assert counts["stored"] == count(engine, Reading) > 0


NOWHERE = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # inf wrote until the disk was full; nan, 367 and words are no better.
        (["csv", "-", "--days", "inf"], "--days: must be more than 0 and at most 366"),
        (["csv", "-", "--days", "nan"], "--days: must be more than 0 and at most 366"),
        (["csv", "-", "--days", "367"], "--days: must be more than 0 and at most 366"),
        (["csv", "-", "--days", "soon"], "--days: 'soon' is not a number"),
        # The year 9999 overflowed in the middle of writing.
        (
            ["csv", "-", "--start", "9999-12-31T23:59:00Z"],
            "--start: must be in the years 1970-2999",
        ),
        (
            ["csv", "-", "--start", "1969-12-31T23:59:59Z"],
            "--start: must be in the years 1970-2999",
        ),
        (
            ["csv", "-", "--start", "2999-12-31T23:00:00Z", "--days", "0.1"],
            "plus 0.1 simulated days goes past the year 2999",
        ),
        (
            ["csv", "-", "--start", "2999-12-31T23:59:50Z", "--readings", "100"],
            "goes past the year 2999",
        ),
        # Sizes that would only take the machine's memory or disk.
        (["csv", "-", "--rooms", "1001"], "--rooms: must be a whole number from 1"),
        (["csv", "-", "--beacons", "0"], "--beacons: must be a whole number from 1"),
        (
            ["csv", "-", "--badges", "9" * 5000],
            "--badges: must be a whole number from 1 to 10,000",
        ),
        (["csv", "-", "--readings", "1e9"], "--readings: must be a whole number"),
        # inf posted as fast as the loop turns.
        (
            ["live", NOWHERE, "--speed", "inf"],
            "--speed: must be more than 0 and at most 1,000",
        ),
        (
            ["live", NOWHERE, "--speed", "1001"],
            "--speed: must be more than 0 and at most 1,000",
        ),
        (
            ["live", NOWHERE, "--duration", "inf"],
            "--duration: must be more than 0 and at most 31,622,400",
        ),
        (
            ["live", NOWHERE, "--summary-every", "nan"],
            "--summary-every: must be more than 0 and at most 86,400",
        ),
    ],
)
def test_out_of_range_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        simulate_script.main(argv)
    assert excinfo.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_the_largest_options_are_accepted():
    args = simulate_script.parser().parse_args(
        ["csv", "-", "--days", "366", "--start", "2999-01-01T00:00:00Z"]
    )
    assert args.days == 366
    args = simulate_script.parser().parse_args(
        ["live", NOWHERE, "--speed", "1000", "--duration", "31622400"]
    )
    assert (args.speed, args.duration) == (1000, 31_622_400)


def test_a_run_ending_just_before_3000_writes_an_importable_file(tmp_path):
    path = tmp_path / "late.csv"
    argv = ["csv", str(path), "--start", "2999-12-31T23:59:00Z", "--readings", "60"]
    assert simulate_script.main(argv) == 0
    with open(path, newline="") as handle:
        rows = list(read_rows(handle))
    assert len(rows) == 60
    assert all(isinstance(row, LabelledRow) for row in rows)
