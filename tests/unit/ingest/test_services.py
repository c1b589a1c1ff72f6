"""IngestService's activity counts on real SQLite and PostgreSQL: each post
counted once, by the attempt that answers it, however often pyramid_retry
replays the request."""

import contextlib
import datetime
import sqlite3

import pytest
import transaction
from pyramid_retry import mark_error_retryable
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import ReadingIn
from stethoscope.ingest.services import IngestService
from stethoscope.singletons import ACTIVITY, DATABASE, DEDUPLICATOR, INGEST_LIMITS
from tests.conftest import count

READING = {"badge_id": "badge-1", "pi_id": "pi-1", "beacons": {"b1": -60}}


class TransientCommitError(RuntimeError):
    """What a commit that may succeed next time raises ("database is locked")."""


@contextlib.contextmanager
def failing_commits(times: int, error=lambda: TransientCommitError("commit failed")):
    """The next ``times`` commits of any session fail, retryably."""
    left = [times]

    def fail(session):
        if left[0]:
            left[0] -= 1
            failure = error()
            mark_error_retryable(failure)
            raise failure

    event.listen(Session, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", fail)
    assert left == [0], "fewer commits than expected"


def counted(app) -> tuple:
    """(posts, duplicates) of pi-1 and of badge-1, and the beacons heard."""
    tracker = app.app.registry[ACTIVITY]
    gateways, badges = tracker.pending()
    return (
        (gateways["pi-1"].posts, gateways["pi-1"].duplicates),
        (badges["badge-1"].posts, badges["badge-1"].duplicates),
        set(tracker.pending_beacons()),
    )


@pytest.fixture
def app(make_app):
    """Every reading stored in the request's transaction, as pyramid_tm
    commits it (group commit stores live ones outside it)."""
    return make_app(**{"stethoscope.ingest.group_commit": "false"})


def test_a_post_replayed_after_a_failed_commit_is_counted_once(app, db):
    with failing_commits(1):
        app.post_json("/rssi_readings", READING, status=201)
    assert count(db, Reading) == 1
    assert counted(app) == ((1, 0), (1, 0), {"b1"})


def test_a_batch_replayed_counts_each_item_once(make_app, db):
    """Uploaded late (buffered offline): stored in the request's transaction
    with group commit too."""
    app = make_app()
    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    other = {**READING, "beacons": {"b2": -70}, "observed_at": then.isoformat()}
    batch = [{**READING, "observed_at": then.isoformat()}, other, other]
    with failing_commits(1):
        result = app.post_json("/rssi_readings", batch).json
    assert [item["status"] for item in result["results"]] == [
        "created",
        "created",
        "duplicate",
    ]
    assert count(db, Reading) == 2
    assert counted(app) == ((3, 1), (3, 1), {"b1", "b2"})


def test_a_post_whose_every_attempt_fails_is_counted_once(app, db):
    """Answered 503 once retry.attempts commits have failed: one post, and
    no beacon news (nothing was stored)."""
    attempts = app.app.registry.settings["retry.attempts"]
    locked = lambda: OperationalError(  # noqa: E731
        "COMMIT", {}, sqlite3.OperationalError("database is locked")
    )
    with failing_commits(attempts, locked):
        app.post_json("/rssi_readings", READING, status=503)
    assert count(db, Reading) == 0
    assert counted(app) == ((1, 0), (1, 0), set())


def test_duplicates_and_readings_refused_for_their_time_are_posts(app):
    """Answered 409 (committed) and 400 (aborted): each counted once."""
    app.post_json("/rssi_readings", READING, status=201)
    app.post_json("/rssi_readings", READING, status=409)
    old = {**READING, "observed_at": "2000-01-01T00:00:00Z"}
    app.post_json("/rssi_readings", old, status=400)
    assert counted(app) == ((3, 1), (3, 1), {"b1"})


@pytest.mark.parametrize("last_attempt", [True, False])
def test_a_failed_commit_counts_only_when_no_attempt_follows(app, db, last_attempt):
    """The last attempt's failure is the gateway's answer (503): its post is
    counted; an earlier attempt's is not, as its replay counts it."""
    registry = app.app.registry
    tracker = registry[ACTIVITY]
    tm = transaction.TransactionManager(explicit=True)
    session = registry[DATABASE].tm_session(tm, write=True)
    service = IngestService(
        session=lambda: session,
        deduplicator=registry[DEDUPLICATOR],
        tracker=tracker,
        transaction_manager=tm,
        limits=registry[INGEST_LIMITS],
        last_attempt=lambda: last_attempt,
    )
    try:
        tm.begin()
        assert service.ingest_one(ReadingIn(**READING), "192.0.2.1").status == (
            "created"
        )
        assert tracker.pending() == ({}, {})  # not before the commit
        with failing_commits(1), pytest.raises(TransientCommitError):
            tm.commit()
        tm.abort()
    finally:
        session.close()
    assert count(db, Reading) == 0
    if last_attempt:
        # Heard by no stored reading: its beacons are not news.
        assert counted(app) == ((1, 0), (1, 0), set())
    else:
        assert tracker.pending() == ({}, {})
