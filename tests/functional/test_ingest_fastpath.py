"""Live readings answered before Pyramid: same answers, less work.

A request that reaches Pyramid's router fires NewRequest (once per attempt
of pyramid_retry); one answered by the fast path in front of it does not.
That is how these tests tell which way a request went.
"""

import datetime
import logging

import orjson
import pytest
import webtest
from pyramid.events import NewRequest
from sqlalchemy.orm import Session

from stethoscope.config import configure
from stethoscope.ingest.fastpath import IngestFastPath
from stethoscope.ingest.models import Reading
from stethoscope.registry.tokens import GatewayTokenService, TokenCache
from stethoscope.singletons import ACTIVITY, DATABASE, TOKEN_CACHE
from tests.support.postgresql import drop_other_connections

from ..conftest import count
from .test_ingest import FailingCommits

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30, "b": -35}}


class CountingApp:
    """The app, counting the requests that went the whole way."""

    def __init__(self, settings):
        self.full_path = 0
        config = configure(settings)
        config.add_subscriber(self._count, NewRequest)
        self.wsgi = IngestFastPath(config.make_wsgi_app())
        self.app = webtest.TestApp(self.wsgi)

    def _count(self, event):
        self.full_path += 1

    def close(self):
        self.wsgi.registry[DATABASE].dispose()


@pytest.fixture
def counting(app_settings):
    apps = []

    def make(**overrides):
        app = CountingApp({**app_settings, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def test_a_repeat_skips_the_transaction_and_answers_like_the_view(counting):
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    assert counted.full_path == 0
    slow = counted.app.post_json(
        "/rssi_readings", {**READING, "observed_at": _now()}, status=409
    )
    assert counted.full_path == 1  # observed_at: never the fast path
    fast = counted.app.post_json(
        "/rssi_readings", {**READING, "pi_id": "G2"}, status=409
    )
    assert counted.full_path == 1
    assert _error_body(fast) == _error_body(slow)
    assert _headers(fast) == _headers(slow)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_original_is_stored_early_and_answered_like_the_view(counting, db, scheme):
    environ = {"wsgi.url_scheme": scheme}
    early = counting()
    # Without group commit a reading is stored in the request's transaction,
    # which only the whole way has.
    whole_way = counting(**{"stethoscope.ingest.group_commit": "false"})
    fast = early.app.post_json("/rssi_readings", READING, extra_environ=environ)
    slow = whole_way.app.post_json("/rssi_readings", READING, extra_environ=environ)
    assert (early.full_path, whole_way.full_path) == (0, 1)
    assert fast.status_int == slow.status_int == 201
    assert _headers(fast) == _headers(slow)
    assert fast.json.keys() == slow.json.keys()
    for key in ("badge_id", "pi_id", "beacons", "badge_strength"):
        assert fast.json[key] == slow.json[key] == READING.get(key)
    stored = db.get(Reading, fast.json["id"])
    assert stored.beacons == READING["beacons"]
    assert stored.received_at.isoformat() == fast.json["received_at"]
    assert count(db, Reading) == 2
    # The repeat too is answered early by either.
    for counted in (early, whole_way):
        counted.app.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=409)
    assert (early.full_path, whole_way.full_path) == (0, 1)


@pytest.mark.parametrize(("failures", "status"), [(1, 201), (3, 503)])
def test_a_reading_not_stored_early_goes_the_whole_way_one_attempt_fewer(
    counting, db, caplog, failures, status
):
    caplog.set_level(logging.DEBUG, logger="stethoscope.ingest.fastpath")
    counted = counting()
    failing = FailingCommits(counted.wsgi.registry[DATABASE].engine, failures)
    try:
        counted.app.post_json("/rssi_readings", READING, status=status)
    finally:
        failing.remove()
    # The early try is the first of retry.attempts (3): the whole way makes
    # the others, and the claims of the failed ones were released.
    assert failing.commits == min(failures + 1, 3)
    assert counted.full_path == min(failures, 2)
    assert "could not store early" in caplog.text
    assert count(db, Reading) == (1 if status == 201 else 0)
    counted.app.post_json(
        "/rssi_readings", READING, status=409 if status == 201 else 201
    )
    assert count(db, Reading) == 1


def test_a_retry_hook_configured_before_still_decides_the_attempts(counting):
    """``retry.activate_hook`` set in the settings keeps deciding; a reading
    the fast path failed to store gets one attempt fewer of its answer."""
    asked = []

    def five_attempts(request):
        asked.append(request.path)
        return 5

    counted = counting(**{"retry.activate_hook": five_attempts})
    failing = FailingCommits(counted.wsgi.registry[DATABASE].engine, failures=100)
    try:
        counted.app.post_json("/rssi_readings", READING, status=503)
    finally:
        failing.remove()
    assert failing.commits == 5  # the early try, then four
    assert counted.full_path == 4
    counted.app.get("/health")
    assert asked == ["/rssi_readings", "/health"]


def test_a_reading_after_the_writers_connection_died_is_stored(counting, db, engine):
    """On PostgreSQL the group writer keeps a connection of its own: when it
    dies (a restart, a network fault) that commit fails and the reading
    takes the whole way, where a fresh connection from the pool stores it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the writer keeps a connection of its own on PostgreSQL")
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    drop_other_connections(engine)  # the writer's among them
    second = {**READING, "badge_id": "B2"}
    counted.app.post_json("/rssi_readings", second, status=201)
    assert counted.full_path == 1
    third = {**READING, "badge_id": "B3"}
    counted.app.post_json("/rssi_readings", third, status=201)
    assert counted.full_path == 1  # the writer has a connection again
    assert count(db, Reading) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"badge_strength": 999},  # invalid, though its fingerprint is known
        {"pi_id": "has space"},
        {"beacons": {"a": -30, "b": -35}, "badge_id": ""},
    ],
)
def test_an_invalid_repeat_gets_the_views_400(counting, change):
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    response = counted.app.post_json(
        "/rssi_readings", {**READING, **change}, status=400
    )
    assert response.json["error"] == "invalid"
    assert counted.full_path == 1


def test_a_batch_goes_the_whole_way(counting):
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    counted.app.post_json("/rssi_readings", [{**READING, "observed_at": _now()}])
    assert counted.full_path == 1


def test_the_callers_rights_are_checked_first(counting, engine):
    counted = counting(**{"stethoscope.ingest.require_token": "true"})
    with Session(engine) as session, session.begin():
        service = GatewayTokenService(session, TokenCache(0))
        token_g1, _ = service.create("G1", "test")
        token_g2, _ = service.create("G2", "test")
    counted.app.post_json(
        "/rssi_readings", READING, headers=_bearer(token_g1), status=201
    )
    counted.app.post_json("/rssi_readings", READING, status=401)
    counted.app.post_json(
        "/rssi_readings", READING, headers=_bearer("stg_not-a-token"), status=401
    )
    # G2's token, but the reading says G1: refused, not "duplicate".
    counted.app.post_json(
        "/rssi_readings", READING, headers=_bearer(token_g2), status=403
    )
    assert counted.full_path == 4
    counted.app.post_json(
        "/rssi_readings",
        {**READING, "pi_id": "G2"},
        headers=_bearer(token_g2),
        status=409,
    )
    assert counted.full_path == 4


def test_fast_repeats_are_counted_for_the_gateway(counting):
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    for gateway in ("G2", "G3", "G2"):
        counted.app.post_json(
            "/rssi_readings", {**READING, "pi_id": gateway}, status=409
        )
    assert counted.full_path == 0
    counted.wsgi.registry[ACTIVITY].flush()
    from stethoscope.registry.models import Gateway

    with Session(counted.wsgi.registry[DATABASE].engine) as session:
        assert session.get(Gateway, "G2").duplicates == 2
        assert session.get(Gateway, "G3").posts == 1


@pytest.mark.parametrize("group_commit", ["true", "false"])
def test_with_redis_a_claim_of_another_process_is_answered_early(
    counting, redis_url, db, group_commit
):
    settings = {
        "stethoscope.dedup.backend": "redis",
        "stethoscope.redis_url": redis_url,
        "stethoscope.ingest.group_commit": group_commit,
    }
    first, second = counting(**settings), counting(**settings)
    first.app.post_json("/rssi_readings", READING, status=201)
    # The second process has not met this claim: Redis knows it (the
    # claim's SET NX GET, or a GET when the fast path cannot store).
    second.app.post_json("/rssi_readings", {**READING, "pi_id": "G2"}, status=409)
    second.app.post_json("/rssi_readings", {**READING, "pi_id": "G3"}, status=409)
    assert second.full_path == 0
    # An advertisement nobody claimed is stored, early with group commit.
    other = {**READING, "beacons": {"a": -40}}
    second.app.post_json("/rssi_readings", other, status=201)
    assert second.full_path == (0 if group_commit == "true" else 1)
    assert count(db, Reading) == 2


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _headers(response) -> dict:
    # Each request has an id of its own.
    assert response.headers["X-Request-ID"]
    skip = {"Date", "Content-Length", "X-Request-ID"}
    return {k: v for k, v in response.headers.items() if k not in skip}


def _error_body(response) -> dict:
    """The error body without its request id, which is the header's."""
    body = orjson.loads(response.body)
    assert body.pop("request_id") == response.headers["X-Request-ID"]
    return body


def test_only_callers_known_without_a_query_take_the_fast_path(counting, engine):
    counted = counting(**{"stethoscope.ingest.token_cache_seconds": "0"})
    with Session(engine) as session, session.begin():
        token, _ = GatewayTokenService(session, TokenCache(0)).create("G1", "test")
    counted.app.post_json("/rssi_readings", READING, status=201)
    # A token this process cannot vouch for without the database, and a
    # cookie (a session to look up): both go the whole way, and still 409.
    counted.app.post_json("/rssi_readings", READING, headers=_bearer(token), status=409)
    counted.app.post_json(
        "/rssi_readings",
        READING,
        headers={"Cookie": "stethoscope_session=x"},
        status=409,
    )
    assert counted.full_path == 2


def test_over_https_the_early_answer_has_the_same_headers(counting):
    counted = counting()
    https = {"wsgi.url_scheme": "https"}
    counted.app.post_json("/rssi_readings", READING, status=201, extra_environ=https)
    slow = counted.app.post_json(
        "/rssi_readings",
        {**READING, "observed_at": _now()},
        status=409,
        extra_environ=https,
    )
    fast = counted.app.post_json(
        "/rssi_readings", {**READING, "pi_id": "G2"}, status=409, extra_environ=https
    )
    assert counted.full_path == 1
    assert "Strict-Transport-Security" in fast.headers
    assert _headers(fast) == _headers(slow)


def test_the_allowed_addresses_are_those_of_the_view(counting):
    counted = counting(
        **{
            "stethoscope.ingest.allow_ips": "10.0.0.0/8",
            "stethoscope.trusted_proxies": "127.0.0.1",
        }
    )
    via_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    allowed = {"X-Forwarded-For": "10.1.2.3"}
    counted.app.post_json(
        "/rssi_readings",
        READING,
        headers=allowed,
        extra_environ=via_proxy,
        status=201,
    )
    # The proxy itself and a client it forwards from elsewhere: refused,
    # though the advertisement is a known one.
    counted.app.post_json(
        "/rssi_readings", READING, extra_environ=via_proxy, status=401
    )
    counted.app.post_json(
        "/rssi_readings",
        READING,
        headers={"X-Forwarded-For": "192.168.1.9"},
        extra_environ=via_proxy,
        status=401,
    )
    assert counted.full_path == 2
    counted.app.post_json(
        "/rssi_readings",
        READING,
        headers=allowed,
        extra_environ=via_proxy,
        status=409,
    )
    assert counted.full_path == 2


def test_a_token_revoked_in_this_process_is_refused_at_once(counting, engine):
    counted = counting(**{"stethoscope.ingest.require_token": "true"})
    cache = counted.wsgi.registry[TOKEN_CACHE]
    with Session(engine) as session, session.begin():
        token, row = GatewayTokenService(session, cache).create("G1", "test")
        session.flush()
        token_id = row.id
    headers = _bearer(token)
    counted.app.post_json("/rssi_readings", READING, headers=headers, status=201)
    counted.app.post_json("/rssi_readings", READING, headers=headers, status=409)
    assert counted.full_path == 1
    with Session(engine) as session, session.begin():
        GatewayTokenService(session, cache).revoke(token_id, "test")
    counted.app.post_json("/rssi_readings", READING, headers=headers, status=401)
    assert counted.full_path == 2


@pytest.mark.parametrize(
    ("content_type", "status", "early"),
    [
        ("application/json; charset=utf-8", 409, True),
        ("text/plain", 415, False),
        ("application/jsonx", 415, False),
    ],
)
def test_the_content_type_is_read_as_the_view_reads_it(
    counting, content_type, status, early
):
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    counted.app.post(
        "/rssi_readings",
        orjson.dumps(READING),
        headers={"Content-Type": content_type},
        status=status,
    )
    assert counted.full_path == (0 if early else 1)


def test_a_body_the_filter_read_reaches_the_view_whole(counting):
    counted = counting(**{"stethoscope.ingest.max_body_bytes": "256"})
    # Read by the filter, not answered (an observed_at): stored by the view.
    other = {**READING, "beacons": {"a": -31}, "observed_at": _now()}
    created = counted.app.post_json("/rssi_readings", other, status=201)
    assert created.json["beacons"] == {"a": -31}
    assert counted.full_path == 1
    # Too long for a single reading: the filter leaves it unread, the view
    # gives the 413.
    padded = {**READING, "pad": "x" * 400}
    counted.app.post_json("/rssi_readings", padded, status=413)
    assert counted.full_path == 2


@pytest.mark.parametrize(
    "observed_at",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after 9999 in UTC
        pytest.param(str(int(datetime.datetime.now().timestamp())), id="epoch"),
    ],
)
def test_a_time_the_view_refuses_gets_its_400(counting, db, observed_at):
    counted = counting()
    reading = {**READING, "observed_at": observed_at}
    fast = counted.app.post_json("/rssi_readings", reading, status=400)
    assert counted.full_path == 1
    slow = counted.app.post_json(
        "/rssi_readings",
        reading,
        headers={"Cookie": "stethoscope_session=x"},
        status=400,
    )
    assert [error["field"] for error in fast.json["errors"]] == ["observed_at"]
    assert _error_body(fast) == _error_body(slow)
    assert _headers(fast) == _headers(slow)
    assert count(db, Reading) == 0


def test_an_unexpected_error_in_validation_goes_the_whole_way(
    counting, db, monkeypatch
):
    """A bug in validation must not escape the app as the server's plain
    500: the fast path steps aside and the whole way answers."""

    from stethoscope.ingest import admission

    validate = admission.validate_reading
    calls = []

    def broken_once(data, **kwargs):
        # The fast path admits first; the whole way, admitting again with
        # the same function, finds it working.
        calls.append(data)
        if len(calls) == 1:
            raise OverflowError("date value out of range")
        return validate(data, **kwargs)

    monkeypatch.setattr(admission, "validate_reading", broken_once)
    counted = counting()
    counted.app.post_json("/rssi_readings", READING, status=201)
    assert counted.full_path == 1
    assert len(calls) == 2
    assert count(db, Reading) == 1
