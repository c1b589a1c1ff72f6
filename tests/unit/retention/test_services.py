"""RetentionService's batches: bounded by a write budget, each one going on
where the last stopped, on SQLite and PostgreSQL."""

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.config import parse_settings
from stethoscope.db import Database, make_engine, utcnow
from stethoscope.ingest.models import Reading
from stethoscope.labels.models import TrainingRun
from stethoscope.retention import services
from stethoscope.retention.services import RetentionService
from tests.support.models import add_site

NOW = utcnow()
DAY = datetime.timedelta(days=1)


@pytest.fixture
def database(db_url):
    settings = parse_settings(
        {"sqlalchemy.url": db_url, "stethoscope.secret": "s" * 32}, environ={}
    )
    database = Database(make_engine(settings))
    yield database
    database.dispose()


def add_readings(engine, badge: str, moments) -> list[int]:
    with Session(engine) as session, session.begin():
        rows = [
            Reading(
                badge_id=badge,
                gateway_id="pi-1",
                received_at=moment,
                observed_at=moment,
                badge_strength=None,
                beacons={"b1": -60},
                fingerprint=f"{n:032x}",
            )
            for n, moment in enumerate(moments)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


@pytest.fixture
def readings(engine):
    """600 old readings of B3 a minute apart, 10 of B1 among them that a
    training run holds, and 5 new ones: their ids by what becomes of them."""
    add_site(engine, "rose", ["lounge"])
    first = NOW - 40 * DAY
    minute = datetime.timedelta(minutes=1)
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id="B1",
                room_id="lounge",
                started_at=first + 100 * minute,
                ended_at=first + 110 * minute,
                created_by="test",
            )
        )
    old = add_readings(engine, "B3", [first + n * minute for n in range(600)])
    held = add_readings(engine, "B1", [first + (100 + n) * minute for n in range(10)])
    new = add_readings(engine, "B3", [NOW - n * minute for n in range(5)])
    return {"old": set(old), "held": set(held), "new": set(new)}


def stored(engine) -> set[int]:
    with Session(engine) as session:
        return set(session.scalars(select(Reading.id)))


def test_a_batch_stops_at_its_write_budget_and_the_next_goes_on(
    database, engine, readings
):
    # A budget of nothing: each batch's write transaction stops after its
    # first statement (IDS_PER_TIMED_STATEMENT = 250 readings).
    service = RetentionService(
        database, actor="test", actor_type="console", write_budget=0, pause=0
    )

    result = service.prune(NOW - 30 * DAY, batch_size=5_000)

    assert (result.deleted, result.batches) == (600, 3)
    assert result.kept_for_training_runs == 10
    assert 0 < result.longest_write_seconds <= result.writing_seconds
    assert stored(engine) == readings["held"] | readings["new"]


def test_without_a_budget_a_batch_deletes_all_it_read(database, engine, readings):
    service = RetentionService(database, actor="test", actor_type="console", pause=0)
    service.write_budget = None  # PostgreSQL's default, on both

    result = service.prune(NOW - 30 * DAY, batch_size=5_000)

    assert (result.deleted, result.batches) == (600, 1)
    assert stored(engine) == readings["held"] | readings["new"]


def test_sqlite_batches_are_bounded_by_default_and_postgresql_ones_are_not(
    database,
):
    service = RetentionService(database, actor="test", actor_type="console")

    expected = services.SQLITE_WRITE_BUDGET_S if database.is_sqlite else None
    assert service.write_budget == expected
