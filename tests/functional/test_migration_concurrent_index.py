"""Migration 0008 on PostgreSQL builds its indexes CONCURRENTLY: readings
are stored while it builds, and a build cut short is built again.

A plain CREATE INDEX queued behind a writer's open transaction makes every
later insert queue behind it; CREATE INDEX CONCURRENTLY waits for that
transaction too, but lets other inserts through meanwhile."""

import datetime
import itertools
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from stethoscope.migrations import upgrade_engine
from tests.support.waiting import wait_for

BEFORE = "0007_archived_stays"
INDEXES = ("ix_readings_day_covered", "ix_readings_day_uncovered")
_numbers = itertools.count()
UPGRADE = """
import sys
from sqlalchemy import create_engine
from stethoscope.migrations import upgrade_engine
upgrade_engine(create_engine(sys.argv[1]))
"""


@pytest.fixture
def at_0007(postgres_server):
    """An engine on a new PostgreSQL database migrated up to 0007."""
    name = f"stethoscope_0007_{next(_numbers)}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    engine = create_engine(postgres_server.database_url(name))
    upgrade_engine(engine, revision=BEFORE)
    yield engine
    engine.dispose()
    postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")


def insert_reading(connection, badge_id: str) -> None:
    now = datetime.datetime.now(datetime.UTC)
    connection.execute(
        text(
            "INSERT INTO readings (badge_id, gateway_id, observed_at, received_at,"
            " beacons, fingerprint) VALUES (:badge, 'pi-1', :now, :now,"
            " '{\"b1\": -60}', :badge)"
        ),
        {"badge": badge_id, "now": now},
    )


def valid_indexes(engine) -> dict[str, bool]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                text(
                    "SELECT pg_class.relname, pg_index.indisvalid FROM pg_index"
                    " JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
                    " WHERE pg_class.relname LIKE 'ix_readings_day_%'"
                )
            ).all()
        )


def test_readings_are_stored_while_the_indexes_build(at_0007):
    engine = at_0007
    with engine.connect() as writer:
        # A request's transaction, open when the migration starts: the build
        # waits for it. The migration runs as an admin runs it, in a process
        # of its own.
        insert_reading(writer, "b-open")
        migration = subprocess.Popen(
            [sys.executable, "-c", UPGRADE, engine.url.render_as_string(False)],
            stderr=subprocess.PIPE,
            text=True,
        )
        # Autocommit: pg_stat_activity is read once per transaction, and an
        # open one would hold the build up too.
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            with autocommit.connect() as watcher:
                wait_for(
                    lambda: watcher.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE state = 'active' AND wait_event_type = 'Lock'"
                            " AND query LIKE 'CREATE INDEX%'"
                        )
                    ),
                    "the index build waiting for the open transaction",
                    timeout=60,
                )
            # Another request stores a reading meanwhile, within a second.
            with engine.connect() as other:
                other.execute(text("SET lock_timeout = '1s'"))
                insert_reading(other, "b-meanwhile")
                other.commit()
            writer.commit()
        finally:
            writer.rollback()  # if the test failed before the commit
            _, errors = migration.communicate(timeout=120)
    assert migration.returncode == 0, errors
    assert valid_indexes(engine) == dict.fromkeys(INDEXES, True)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == (
            "0008_readings_day_index"
        )
        assert sorted(connection.scalars(text("SELECT badge_id FROM readings"))) == [
            "b-meanwhile",
            "b-open",
        ]


def test_a_migration_cut_short_is_finished_by_running_it_again(at_0007):
    engine = at_0007
    with engine.connect() as connection:
        insert_reading(connection, "b1")
        insert_reading(connection, "b1")
        connection.commit()
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as c:
        # Cut short after its first index was built...
        c.execute(
            text(
                "CREATE INDEX CONCURRENTLY ix_readings_day_covered ON readings"
                " (badge_id, observed_at, id, beacons)"
                " WHERE length(CAST(beacons AS TEXT)) <= 1200"
            )
        )
        # ... and while it built the second, which is left invalid (here: a
        # unique index over a repeated value fails half way).
        with pytest.raises(Exception, match="could not create unique"):
            c.execute(
                text(
                    "CREATE UNIQUE INDEX CONCURRENTLY ix_readings_day_uncovered"
                    " ON readings (badge_id)"
                )
            )
    assert valid_indexes(engine) == {
        "ix_readings_day_covered": True,
        "ix_readings_day_uncovered": False,
    }

    upgrade_engine(engine)

    assert valid_indexes(engine) == dict.fromkeys(INDEXES, True)
    with engine.connect() as connection:
        definition = connection.scalar(
            text("SELECT pg_get_indexdef('ix_readings_day_uncovered'::regclass)")
        )
    assert "UNIQUE" not in definition
    assert "(badge_id, observed_at)" in definition
