"""ActivityTracker's beacon tallies, flushed to real SQLite and PostgreSQL."""

import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from stethoscope.config import parse_settings
from stethoscope.db import Database, make_engine
from stethoscope.registry import activity
from stethoscope.registry.activity import ActivityTracker
from stethoscope.registry.models import Badge, Beacon, Gateway
from tests.support.sqlite import failing_checkpoints

T0 = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)


def at(seconds: int) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def heard(db) -> dict:
    db.rollback()
    return {
        b.id: (b.first_heard, b.last_heard, b.room_id, b.label)
        for b in db.scalars(select(Beacon))
    }


def test_beacons_are_upserted_null_safe_and_keep_the_extremes(engine, db):
    tracker = ActivityTracker(Database(engine), flush_seconds=0)
    # Described by an admin before it was ever heard: NULL times.
    db.add(Beacon(id="b-known", label="door"))
    db.commit()

    tracker.record_beacons(["b-known", "b-new"], at(10))
    tracker.record_beacons({"b-new": -60}, at(5))
    assert tracker.pending_beacons() == {
        "b-known": (at(10), at(10)),
        "b-new": (at(5), at(10)),
    }
    tracker.flush()
    assert tracker.pending_beacons() == {}
    assert heard(db) == {
        "b-known": (at(10), at(10), None, "door"),
        "b-new": (at(5), at(10), None, None),
    }

    # A late upload (older) and a live one: first goes back, last forward,
    # and nothing an admin wrote is touched.
    tracker.record_beacons(["b-new"], at(1))
    tracker.record_beacons(["b-known"], at(20))
    tracker.flush()
    assert heard(db) == {
        "b-known": (at(10), at(20), None, "door"),
        "b-new": (at(1), at(10), None, None),
    }


def test_a_failed_flush_keeps_the_beacons(engine, db, monkeypatch):
    tracker = ActivityTracker(Database(engine), flush_seconds=0)
    tracker.record_beacons(["b1"], at(10))

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("stethoscope.registry.activity._upsert_beacons", broken)
    tracker.flush()
    tracker.record_beacons(["b1"], at(3))
    assert tracker.pending_beacons() == {"b1": (at(3), at(10))}
    monkeypatch.undo()
    tracker.flush()
    assert heard(db) == {"b1": (at(3), at(10), None, None)}


def test_a_big_flush_goes_in_short_transactions_and_a_failure_keeps_the_rest(
    engine, db, monkeypatch
):
    """Each transaction holds SQLite's write lock, which ingest waits for."""
    tracker = ActivityTracker(Database(engine), flush_seconds=0)
    badges = [f"b{n:04d}" for n in range(2 * activity.FLUSH_ROWS + 1)]
    for badge_id in badges:
        tracker.record("G1", badge_id, "10.0.0.1", at(10), duplicate=False)
    written = []
    upsert = activity._upsert

    def second_badge_chunk_fails(session, model, source, chunk):
        if model is Badge and written.count(Badge) == 1:
            raise RuntimeError("database gone")
        written.append(model)
        upsert(session, model, source, chunk)

    monkeypatch.setattr(activity, "_upsert", second_badge_chunk_fails)
    tracker.flush()
    db.rollback()
    stored = set(db.scalars(select(Badge.id)))
    assert stored == set(badges[: activity.FLUSH_ROWS])
    # What was not written waits for the next flush; nothing is counted twice.
    assert set(tracker.pending()[1]) == set(badges[activity.FLUSH_ROWS :])
    monkeypatch.undo()
    tracker.flush()
    db.rollback()
    assert {b.id: b.posts for b in db.scalars(select(Badge))} == dict.fromkeys(
        badges, 1
    )


def test_a_failed_checkpoint_counts_nothing_twice(engine, db, caplog):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    database = Database(engine)
    tracker = ActivityTracker(database, flush_seconds=0)
    badges = [f"b{n:04d}" for n in range(activity.FLUSH_ROWS + 1)]
    for badge_id in badges:
        tracker.record("G1", badge_id, "10.0.0.1", at(10), duplicate=False)
    with failing_checkpoints(engine):
        tracker.flush()
    db.rollback()
    # Every chunk was committed, so none waits to be written again.
    assert tracker.pending() == ({}, {})
    assert {b.id: b.posts for b in db.scalars(select(Badge))} == dict.fromkeys(
        badges, 1
    )
    assert "could not checkpoint" in caplog.text


def test_a_big_flush_keeps_sqlites_log_short(sqlite_url, tmp_path):
    """SQLite would copy its log into the database inside the commit that
    takes it past 1,000 pages, holding the write turn meanwhile; the flush
    checkpoints between its transactions instead, so the log never gets
    there."""
    settings = parse_settings(
        {
            "sqlalchemy.url": sqlite_url,
            "stethoscope.secret": "test-secret-of-at-least-thirty-two-characters",
            "stethoscope.model_dir": str(tmp_path / "models"),
        }
    )
    database = Database(make_engine(settings))
    tracker = ActivityTracker(database, flush_seconds=0)
    log = Path(sqlite_url.removeprefix("sqlite:///") + "-wal")
    try:
        for n in range(15000):
            tracker.record(f"G{n % 300}", f"badge-{n:05}", None, at(n), duplicate=False)
        tracker.flush()
        with database.engine.connect() as connection:
            page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
            badges = connection.scalar(select(func.count()).select_from(Badge))
            # Read while a connection is open: the last one to close
            # checkpoints and removes the log.
            log_size = log.stat().st_size
    finally:
        database.engine.dispose()
    assert badges == 15000
    assert log_size < 1000 * page_size


def test_a_post_recorded_out_of_order_moves_first_seen_back(engine, db):
    """Threads record posts in the order they get the lock, not of their
    times: an earlier post may come second."""
    tracker = ActivityTracker(Database(engine), flush_seconds=0)
    tracker.record("G1", "B1", "10.0.0.2", at(2), duplicate=False)
    tracker.record("G1", "B1", "10.0.0.1", at(1), duplicate=True)
    gateways, badges = tracker.pending()
    for tally in (gateways["G1"], badges["B1"]):
        assert (tally.first_seen, tally.last_seen) == (at(1), at(2))
        assert (tally.posts, tally.duplicates) == (2, 1)
    assert gateways["G1"].last_source == "10.0.0.2"
    tracker.flush()
    db.rollback()
    stored = db.get(Gateway, "G1")
    assert (stored.first_seen, stored.last_seen, stored.last_ip) == (
        at(1),
        at(2),
        "10.0.0.2",
    )
