"""POST /rssi_readings: storage, deduplication and its interplay with commits."""

import datetime
import sqlite3

import pytest
import webtest
from pyramid.events import NewRequest
from pyramid_retry import mark_error_retryable
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from stethoscope.config import configure
from stethoscope.ingest.interfaces import IDeduplicator
from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import fingerprint
from stethoscope.singletons import DATABASE, DEDUPLICATOR, INGEST_WRITER
from tests.conftest import count
from tests.support.services import RedisServer, private_directory
from tests.support.transactions import FailingVote
from tests.support.waiting import find_service, wait_for

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30, "b": -35, "c": -40}}


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@pytest.fixture(params=["memory", "redis"])
def dedup_settings(request):
    """Run the test with each deduplicator backend."""
    if request.param == "memory":
        return {"stethoscope.dedup.backend": "memory"}
    return {
        "stethoscope.dedup.backend": "redis",
        "stethoscope.redis_url": request.getfixturevalue("redis_url"),
    }


class TestStoring:
    def test_201_returns_the_stored_reading(self, testapp, db):
        before = now()
        response = testapp.post_json(
            "/rssi_readings",
            {**READING, "badge_strength": -61, "beacons": {"a": -30, "z": -128}},
            status=201,
        )
        body = response.json
        assert body["badge_id"] == "B1"
        assert body["pi_id"] == "G1"
        assert body["beacons"] == {"a": -30}
        assert body["badge_strength"] == -61
        assert before <= datetime.datetime.fromisoformat(body["received_at"]) <= now()
        assert body["observed_at"] == body["received_at"]
        stored = db.get(Reading, body["id"])
        assert stored.gateway_id == "G1"
        assert stored.beacons == {"a": -30}
        assert stored.received_at.tzinfo is not None
        assert stored.fingerprint == fingerprint("B1", {"a": -30})

    def test_observed_at_is_kept(self, testapp, db):
        heard = now() - datetime.timedelta(seconds=2)
        response = testapp.post_json(
            "/rssi_readings", {**READING, "observed_at": iso(heard)}, status=201
        )
        assert db.get(Reading, response.json["id"]).observed_at == heard

    @pytest.mark.parametrize(
        ("offset", "message"),
        [
            (datetime.timedelta(minutes=10), "in the future"),
            (datetime.timedelta(days=-8), "older than 168 hours"),
        ],
    )
    def test_observed_at_out_of_bounds_is_400(self, testapp, db, offset, message):
        response = testapp.post_json(
            "/rssi_readings",
            {**READING, "observed_at": iso(now() + offset)},
            status=400,
        )
        [error] = response.json["errors"]
        assert error["field"] == "observed_at"
        assert message in error["message"]
        assert count(db, Reading) == 0


class TestDeduplication:
    def test_same_payload_from_two_gateways_is_stored_once(
        self, make_app, dedup_settings, db
    ):
        app = make_app(**dedup_settings)
        app.post_json("/rssi_readings", READING, status=201)
        response = app.post_json(
            "/rssi_readings",
            {**READING, "pi_id": "G2", "badge_strength": -70},
            status=409,
        )
        assert response.json["error"] == "duplicate"
        assert count(db, Reading) == 1

    def test_duplicate_is_seen_by_another_process(self, make_app, redis_url, db):
        settings = {
            "stethoscope.dedup.backend": "redis",
            "stethoscope.redis_url": redis_url,
        }
        first, second = make_app(**settings), make_app(**settings)
        first.post_json("/rssi_readings", READING, status=201)
        second.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=409)
        assert count(db, Reading) == 1

    def test_other_beacons_or_rssi_are_not_duplicates(self, testapp, db):
        testapp.post_json("/rssi_readings", READING, status=201)
        testapp.post_json(
            "/rssi_readings", {**READING, "beacons": {"a": -31, "b": -35, "c": -40}}
        )
        testapp.post_json("/rssi_readings", {**READING, "badge_id": "B2"}, status=201)
        assert count(db, Reading) == 3

    def test_same_payload_after_the_window_is_stored_again(
        self, make_app, dedup_settings, db
    ):
        # Long enough that the second post lands inside the window however
        # slow a loaded machine makes the first (its claim is taken midway);
        # the wait below is for the window's end, not a fixed sleep.
        app = make_app(**dedup_settings, **{"stethoscope.dedup.window_ms": "2000"})
        deduplicator = find_service(app.app, IDeduplicator)
        app.post_json("/rssi_readings", READING, status=201)
        app.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=409)
        key = fingerprint(READING["badge_id"], READING["beacons"])
        wait_for(lambda: not deduplicator.claimed(key), "the window to pass")
        app.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=201)
        assert count(db, Reading) == 2


def app_with_failing_commits(settings, failures):
    """The app, with every request's commit failing ``failures`` times."""
    failing = FailingVote(failures)
    config = configure(settings)
    config.add_subscriber(failing.join, NewRequest)
    return config.make_wsgi_app(), failing


class FailingCommits:
    """The database's COMMIT fails ``failures`` times, transiently (as
    SQLite's "database is locked" is marked for pyramid_retry). On
    PostgreSQL the group writer's INSERT commits by itself (autocommit):
    there it is the INSERT that fails."""

    def __init__(self, engine, failures: int):
        self.engine = engine
        self.remaining = failures
        self.commits = 0
        event.listen(engine, "commit", self.commit)
        event.listen(engine, "before_cursor_execute", self.statement)

    def statement(self, connection, cursor, statement, *_):
        options = connection.get_execution_options()
        if statement.startswith("INSERT") and (
            options.get("isolation_level") == "AUTOCOMMIT"
        ):
            self.commit(connection)

    def commit(self, connection):
        self.commits += 1
        if self.remaining > 0:
            self.remaining -= 1
            error = OperationalError(
                "COMMIT", {}, sqlite3.OperationalError("database is locked")
            )
            mark_error_retryable(error)
            raise error

    def remove(self):
        event.remove(self.engine, "commit", self.commit)
        event.remove(self.engine, "before_cursor_execute", self.statement)


def late(reading: dict) -> dict:
    """``reading`` as a gateway uploads it from its buffer, 10 minutes on."""
    return {**reading, "observed_at": iso(now() - datetime.timedelta(minutes=10))}


class TestCommitFailures:
    """A live original is committed by the group writer, a late one in the
    request's transaction: both must survive a failed commit."""

    @pytest.mark.parametrize("failures", [1, 3])
    def test_a_live_reading_whose_commit_fails_is_not_lost(
        self, make_app, dedup_settings, db, failures
    ):
        app = make_app(**dedup_settings)
        engine = app.app.registry[DATABASE].engine
        failing = FailingCommits(engine, failures)
        try:
            if failures == 1:
                # pyramid_retry replays the request; its claim was released.
                response = app.post_json("/rssi_readings", READING, status=201)
                assert db.get(Reading, response.json["id"]) is not None
            else:
                response = app.post_json("/rssi_readings", READING, status=503)
                assert response.headers["Retry-After"] == "5"
                assert count(db, Reading) == 0
                # The gateway retries: the released claim lets the reading in.
                app.post_json("/rssi_readings", READING, status=201)
        finally:
            failing.remove()
        assert failing.commits == failures + 1
        assert count(db, Reading) == 1
        app.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=409)

    def test_live_originals_go_to_the_group_writer(self, anonymous, testapp, db):
        writer = anonymous.app.registry[INGEST_WRITER]
        anonymous.post_json("/rssi_readings", READING, status=201)
        anonymous.post_json("/rssi_readings", late({**READING, "badge_id": "B2"}))
        assert (writer.commits, writer.rows) == (1, 1)
        # A request holding its own session (here a staff cookie looked up:
        # on SQLite, the write lock) stores in its own transaction instead.
        logged_in = testapp.app.registry[INGEST_WRITER]
        testapp.post_json("/rssi_readings", {**READING, "badge_id": "B3"}, status=201)
        assert logged_in.rows == 0
        assert count(db, Reading) == 3

    def test_a_late_reading_whose_commit_fails_once_is_stored_once(
        self, app_settings, dedup_settings, db
    ):
        wsgi, failing = app_with_failing_commits({**app_settings, **dedup_settings}, 1)
        app = webtest.TestApp(wsgi)
        reading = late(READING)
        response = app.post_json("/rssi_readings", reading, status=201)
        assert failing.votes == 2  # the first attempt failed, the retry committed
        assert count(db, Reading) == 1
        assert db.get(Reading, response.json["id"]) is not None
        app.post_json("/rssi_readings", {**reading, "pi_id": "G2"}, status=409)
        wsgi.registry[DATABASE].dispose()

    def test_a_late_reading_whose_commit_always_fails_is_503_and_not_lost(
        self, app_settings, dedup_settings, db
    ):
        wsgi, failing = app_with_failing_commits({**app_settings, **dedup_settings}, 3)
        app = webtest.TestApp(wsgi)
        reading = late(READING)
        response = app.post_json("/rssi_readings", reading, status=503)
        assert response.headers["Retry-After"] == "5"
        assert failing.votes == 3
        assert count(db, Reading) == 0
        app.post_json("/rssi_readings", reading, status=201)
        assert count(db, Reading) == 1
        wsgi.registry[DATABASE].dispose()

    def test_claims_made_before_a_failure_are_released(
        self, anonymous, monkeypatch, db
    ):
        """Grouped claims have no transaction hooks: an error between claim
        and commit must still release them, or the retry is a "duplicate"."""
        deduplicator = anonymous.app.registry[DEDUPLICATOR]
        claim = deduplicator.claim
        calls = []

        def second_claim_fails(fingerprint):
            calls.append(fingerprint)
            if len(calls) == 2:
                raise RuntimeError("injected")
            return claim(fingerprint)

        monkeypatch.setattr(deduplicator, "claim", second_claim_fails)
        first = {**READING, "observed_at": iso(now())}
        second = {**first, "badge_id": "B2"}
        anonymous.post_json("/rssi_readings", [first, second], status=500)
        monkeypatch.undo()
        assert count(db, Reading) == 0
        anonymous.post_json("/rssi_readings", [first, second], status=200)
        assert count(db, Reading) == 2

    def test_without_group_commit_a_live_reading_uses_the_request_transaction(
        self, app_settings, db
    ):
        settings = {**app_settings, "stethoscope.ingest.group_commit": "false"}
        wsgi, failing = app_with_failing_commits(settings, 1)
        app = webtest.TestApp(wsgi)
        app.post_json("/rssi_readings", READING, status=201)
        assert failing.votes == 2
        assert count(db, Reading) == 1
        app.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=409)
        wsgi.registry[DATABASE].dispose()


class TestRedisOutage:
    @pytest.fixture
    def own_redis(self):
        server = RedisServer(private_directory("stethoscope-redis-outage-")).start()
        yield server
        server.stop()

    def test_ingest_keeps_storing_when_redis_stops(
        self, make_app, own_redis, db, caplog
    ):
        app = make_app(
            **{
                "stethoscope.dedup.backend": "redis",
                "stethoscope.redis_url": own_redis.url,
                "stethoscope.redis.retry_interval_ms": "0",
            }
        )
        app.post_json("/rssi_readings", READING, status=201)
        own_redis.stop()
        second = {**READING, "badge_id": "B2"}
        app.post_json("/rssi_readings", second, status=201)
        # Deduplication goes on in memory meanwhile.
        app.post_json("/rssi_readings", {**second, "pi_id": "G2"}, status=409)
        assert count(db, Reading) == 2
        health = app.get("/health").json
        assert health["dedup"]["redis"] == "unavailable"
        assert health["dedup"]["fallbacks"] >= 2
        assert "Redis unavailable" in caplog.text

        own_redis.start()
        third = {**READING, "badge_id": "B3"}
        app.post_json("/rssi_readings", third, status=201)
        assert own_redis.client().exists(
            "stethoscope:dedup:" + fingerprint("B3", third["beacons"])
        )
        assert app.get("/health").json["dedup"]["redis"] == "ok"
