"""stethoscope-prune: old readings go, training data and newer ones stay, on
SQLite and PostgreSQL."""

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.db import utcnow
from stethoscope.ingest.models import Reading
from stethoscope.labels.models import TrainingRun
from stethoscope.scripts import prune
from tests.support.models import add_site

NOW = utcnow()
DAY = datetime.timedelta(days=1)


def ago(days: float) -> datetime.datetime:
    return NOW - days * DAY


def add_readings(engine, *readings: tuple[str, datetime.datetime]) -> list[int]:
    """Store readings (badge, observed_at); their ids, in order."""
    with Session(engine) as session, session.begin():
        rows = [
            Reading(
                badge_id=badge,
                gateway_id="pi-1",
                received_at=observed,
                observed_at=observed,
                badge_strength=None,
                beacons={"b1": -60},
                fingerprint="f" * 32,
            )
            for badge, observed in readings
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def add_run(engine, badge, started, ended=None, *, cancelled=None) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id=badge,
                room_id="lounge",
                started_at=started,
                ended_at=ended,
                cancelled_at=cancelled,
                created_by="test",
            )
        )


def stored(db) -> set[int]:
    db.rollback()
    return set(db.scalars(select(Reading.id)))


def prune_events(db) -> list[tuple]:
    db.rollback()
    return [
        (event.actor, event.actor_type, event.details)
        for event in db.scalars(
            select(AuditEvent).where(AuditEvent.action == "readings.prune")
        )
    ]


@pytest.fixture
def house(engine):
    """Readings of badges B1 and B2 around training runs; their ids by name."""
    add_site(engine, "rose", ["lounge"])
    # B1 was in a completed run 40 to 35 days ago; B2 is in a run opened 50
    # days ago and still open; B1's run 60 to 55 days ago was cancelled.
    add_run(engine, "B1", ago(40), ago(35))
    add_run(engine, "B2", ago(50))
    add_run(engine, "B1", ago(60), ago(55), cancelled=ago(54))
    names = [
        "b1_old",  # 45 days, outside B1's runs: goes
        "b1_in_run",  # 38 days, inside B1's run: stays
        "b1_run_end",  # at the run's very end: stays
        "b1_in_cancelled",  # inside the cancelled run: goes
        "b2_old_before_run",  # 52 days, before B2's run opened: goes
        "b2_in_open_run",  # 45 days, inside B2's open run: stays
        "b3_old",  # 31 days, no run at all: goes
        "b1_new",  # 10 days: newer than the cut-off, stays
        "b3_new",  # an hour ago: stays
    ]
    ids = add_readings(
        engine,
        ("B1", ago(45)),
        ("B1", ago(38)),
        ("B1", ago(35)),
        ("B1", ago(57)),
        ("B2", ago(52)),
        ("B2", ago(45)),
        ("B3", ago(31)),
        ("B1", ago(10)),
        ("B3", ago(1 / 24)),
    )
    return dict(zip(names, ids, strict=True))


GONE = {"b1_old", "b1_in_cancelled", "b2_old_before_run", "b3_old"}


@pytest.mark.parametrize("batch_size", ["1", "2", "5000"])
def test_old_readings_go_and_training_data_stays(ini, db, house, capsys, batch_size):
    assert (
        prune.main([ini, "--older-than", "30d", "--batch-size", batch_size, "--quiet"])
        == 0
    )

    assert stored(db) == {id_ for name, id_ in house.items() if name not in GONE}
    out = capsys.readouterr().out
    assert "deleted 4 readings" in out and "3 kept for training runs" in out
    batches = {"1": 4, "2": 2, "5000": 1}[batch_size]
    assert f"in {batches} batches" in out
    [(actor, actor_type, details)] = prune_events(db)
    assert (actor, actor_type) == ("console:matron", "console")
    assert details["deleted"] == 4 and details["kept_for_training_runs"] == 3
    assert details["batch_size"] == int(batch_size) and details["finished"] is True


def test_running_it_again_deletes_nothing_more(ini, db, house, capsys):
    assert prune.main([ini, "--older-than", "30d", "--quiet"]) == 0
    left = stored(db)
    assert prune.main([ini, "--older-than", "30d", "--quiet"]) == 0

    assert stored(db) == left
    assert "deleted 0 readings" in capsys.readouterr().out
    assert [details["deleted"] for _, _, details in prune_events(db)] == [4, 0]


def test_a_dry_run_counts_and_deletes_nothing(ini, db, house, capsys):
    assert prune.main([ini, "--older-than", "30d", "--dry-run"]) == 0

    assert stored(db) == set(house.values())
    out = capsys.readouterr().out
    assert out.startswith("dry run: 4 readings from before ")
    assert "3 stay for training runs" in out and "nothing was deleted" in out
    assert prune_events(db) == []


def test_a_longer_age_keeps_more(ini, db, house, capsys):
    assert prune.main([ini, "--older-than", "7w", "--quiet"]) == 0  # 49 days

    gone = {"b1_in_cancelled", "b2_old_before_run"}
    assert stored(db) == {id_ for name, id_ in house.items() if name not in gone}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "30"], "a whole number and a unit"),
        (["--older-than", "30 days"], "a whole number and a unit"),
        (["--older-than", "59m"], "from 1h to 100 years"),
        (["--older-than", "30d", "--batch-size", "0"], "from 1 to 1,000,000"),
        (["--older-than", "30d", "--batch-size", "-5"], "from 1 to 1,000,000"),
        ([], "--older-than"),
    ],
)
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        prune.main(["console.ini", *argv])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_durations():
    assert prune.duration("30d") == datetime.timedelta(days=30)
    assert prune.duration("12h") == datetime.timedelta(hours=12)
    assert prune.duration("90m") == datetime.timedelta(minutes=90)
    assert prune.duration("2w") == datetime.timedelta(days=14)
    assert prune.duration("3600s") == datetime.timedelta(hours=1)


def test_a_missing_database_is_one_line(tmp_path, capsys):
    ini = tmp_path / "missing.ini"
    assert prune.main([str(ini), "--older-than", "30d"]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot load {ini}")
