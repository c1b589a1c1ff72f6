"""A reading whose claim is still pending is never answered 409.

Another request holds the claim and has not committed: the post waits
(``stethoscope.dedup.pending_wait_ms``), then answers 503 with Retry-After,
alike on the fast path and the whole way; once the claim is confirmed the
answer is 409, once released the reading is stored (201).
"""

import datetime

import pytest

from stethoscope.ingest.schemas import fingerprint
from stethoscope.singletons import DEDUPLICATOR

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30}}


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


def whole_way(reading: dict) -> dict:
    # A live reading with observed_at is left to the view (fastpath.py).
    now = datetime.datetime.now(datetime.UTC).isoformat()
    return {**reading, "observed_at": now}


@pytest.fixture
def app(make_app):
    # No wait: the pending claim is held by this test, which is not storing it.
    return make_app(**{"stethoscope.dedup.pending_wait_ms": "0"})


@pytest.fixture
def held_claim(app):
    deduplicator = app.app.registry[DEDUPLICATOR]
    claim = deduplicator.claim(fingerprint(READING["badge_id"], READING["beacons"]))
    assert claim is not None
    return deduplicator, claim


def test_pending_claim_is_503_the_same_on_both_ways(app, held_claim):
    fast = app.post_json("/rssi_readings", READING, status=503)
    whole = app.post_json("/rssi_readings", whole_way(READING), status=503)
    for response in (fast, whole):
        assert response.headers["Retry-After"] == "2"
        assert response.json["error"] == "service_unavailable"
    # The same answer both ways, but for each request's own id.
    assert fast.json["request_id"] != whole.json["request_id"]
    assert {**fast.json, "request_id": ""} == {**whole.json, "request_id": ""}
    assert {**fast.headers, "X-Request-ID": ""} == {**whole.headers, "X-Request-ID": ""}


def test_confirmed_claim_is_409_on_both_ways(app, held_claim):
    deduplicator, claim = held_claim
    deduplicator.confirm(claim)
    app.post_json("/rssi_readings", READING, status=409)
    app.post_json("/rssi_readings", whole_way(READING), status=409)


@pytest.mark.parametrize("way", [lambda reading: reading, whole_way])
def test_released_claim_is_stored(app, held_claim, way):
    deduplicator, claim = held_claim
    deduplicator.release(claim)
    created = app.post_json("/rssi_readings", way(READING), status=201)
    assert created.json["badge_id"] == "B1"
    app.post_json("/rssi_readings", READING, status=409)


def test_a_setting_bounds_the_wait(make_app):
    with pytest.raises(Exception, match="pending_wait_ms"):
        make_app(**{"stethoscope.dedup.pending_wait_ms": "60000"})
