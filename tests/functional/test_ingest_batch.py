"""Batch uploads: a gateway sending what it buffered while offline."""

import datetime
import threading
import zlib

import pytest
import webtest
from sqlalchemy import event

from stethoscope.ingest.models import Reading
from stethoscope.singletons import DATABASE
from tests.conftest import count

NOW = datetime.datetime.now(datetime.UTC)


def item(badge="B1", gateway="G1", beacons=None, seconds_ago=600.0):
    return {
        "badge_id": badge,
        "pi_id": gateway,
        "beacons": beacons or {"a": -40, "b": -50},
        "observed_at": (NOW - datetime.timedelta(seconds=seconds_ago)).isoformat(),
    }


def statuses(response):
    return [result["status"] for result in response.json["results"]]


def test_good_duplicate_and_invalid_items(testapp, db):
    batch = [
        item(seconds_ago=600),
        item(seconds_ago=599, gateway="G2"),  # same advertisement, another gateway
        item(seconds_ago=300),  # same beacons, later: a new reading
        {**item(), "beacons": {"a": "loud"}},
        {**item(badge="B2"), "observed_at": None},
        "not an object",
        item(badge="B2", seconds_ago=1),  # recent: deduplicated like a live post
    ]
    response = testapp.post_json("/rssi_readings", batch, status=200)
    assert statuses(response) == [
        "created",
        "duplicate",
        "created",
        "rejected",
        "rejected",
        "rejected",
        "created",
    ]
    body = response.json
    assert (body["created"], body["duplicate"], body["rejected"]) == (3, 1, 3)
    assert body["results"][3]["errors"] == [
        {"field": "3.beacons.a", "message": "Input should be a valid integer"}
    ]
    assert body["results"][4]["errors"][0]["field"] == "4.observed_at"
    assert body["results"][5]["errors"][0]["field"] == "5"
    ids = [r["id"] for r in body["results"] if r["status"] == "created"]
    assert count(db, Reading) == 3
    stored = {db.get(Reading, i).observed_at for i in ids}
    assert stored == {
        datetime.datetime.fromisoformat(batch[i]["observed_at"]) for i in (0, 2, 6)
    }
    # The recent item holds a live claim like any single post.
    testapp.post_json("/rssi_readings", {**batch[6], "pi_id": "G9"}, status=409)


def test_uploading_the_same_buffer_again_stores_nothing(testapp, db):
    batch = [item(seconds_ago=s) for s in (900, 800, 700)]
    assert statuses(testapp.post_json("/rssi_readings", batch)) == ["created"] * 3
    again = [{**i, "pi_id": "G2"} for i in batch]
    assert statuses(testapp.post_json("/rssi_readings", again)) == ["duplicate"] * 3
    assert count(db, Reading) == 3


def test_late_item_matches_a_stored_reading_within_the_window(testapp, db):
    testapp.post_json("/rssi_readings", [item(seconds_ago=600)])
    near = item(seconds_ago=595, gateway="G2")  # 5 s later: inside 5.5 s
    far = item(seconds_ago=594, gateway="G3")  # 6 s after the first: outside
    assert statuses(testapp.post_json("/rssi_readings", [near, far])) == [
        "duplicate",
        "created",
    ]


def test_gateways_uploading_the_same_buffer_at_once_store_it_once(make_app, db):
    # Four gateways come back online together and send what they buffered.
    batch = [
        item(badge=f"B{b}", beacons={"a": -40 - s}, seconds_ago=600 - s)
        for b in range(5)
        for s in range(20)
    ]
    wsgi = make_app.wsgi()
    barrier = threading.Barrier(4)
    results = []

    def upload(gateway):
        app = webtest.TestApp(wsgi)
        barrier.wait()
        response = app.post_json(
            "/rssi_readings", [{**i, "pi_id": gateway} for i in batch], status=200
        )
        results.append(response.json)

    threads = [threading.Thread(target=upload, args=(f"G{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["created"] for r in results) == len(batch)
    assert sum(r["duplicate"] for r in results) == 3 * len(batch)
    assert count(db, Reading) == len(batch)


def test_empty_batch_is_400(testapp):
    response = testapp.post_json("/rssi_readings", [], status=400)
    assert response.json["errors"][0]["field"] == "body"


def test_too_many_items_is_413(make_app, db):
    app = make_app(**{"stethoscope.ingest.max_batch_items": "3"})
    app.post_json("/rssi_readings", [item(seconds_ago=s) for s in range(4)], status=413)
    assert count(db, Reading) == 0


def test_batch_body_too_large_is_413(make_app, db):
    app = make_app(**{"stethoscope.ingest.max_batch_bytes": "2048"})
    batch = [item(seconds_ago=s) for s in range(40)]
    app.post_json("/rssi_readings", batch, status=413)
    assert count(db, Reading) == 0


@pytest.mark.parametrize("size", [1, 250])
def test_ids_follow_item_order(testapp, db, size):
    batch = [item(badge=f"B{n}", seconds_ago=60) for n in range(size)]
    results = testapp.post_json("/rssi_readings", batch).json["results"]
    for sent, result in zip(batch, results, strict=True):
        assert db.get(Reading, result["id"]).badge_id == sent["badge_id"]


def test_late_uploads_lock_their_badges_in_the_order_of_the_keys(testapp, db):
    """PostgreSQL: the per-badge advisory locks are taken by ascending key,
    whatever the badges' names, so two uploads sharing badges whose keys
    collide cannot take two locks in opposite orders."""
    if db.bind.dialect.name != "postgresql":
        pytest.skip("the advisory locks are PostgreSQL's")
    engine = testapp.app.registry[DATABASE].engine
    keys = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if "pg_advisory_xact_lock" in statement:
            keys.append(next(iter(parameters.values())))

    # badge-1 sorts before badge-2, but its key is the larger (3074823012).
    badges = ["badge-1", "badge-2"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = testapp.post_json("/rssi_readings", [item(b) for b in badges])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statuses(response) == ["created", "created"]
    assert keys == sorted(zlib.crc32(badge.encode()) for badge in badges)
