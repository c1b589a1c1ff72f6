"""A server process killed while it holds claims: no gateway is told 409
(or 201) about a reading that is not in the database.

Two real server processes share a private PostgreSQL and redis-server.
Gateways post the same advertisements (as every gateway in range of a badge
does) to process A. The test holds an EXCLUSIVE lock on ``readings`` so
that A's inserts wait with their claims pending in Redis, then SIGKILLs A
and ends A's database sessions before letting go of the lock, so nothing A
was inserting is ever committed. The gateways retry at once on process B.
Afterwards every reading a gateway was told 201 or 409 must be stored.
"""

import datetime
import http.client
import threading

import orjson
import psycopg
import pytest
from sqlalchemy import select

from stethoscope.ingest.dedup import RedisDeduplicator
from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import fingerprint
from tests.support.server_process import ServerProcess
from tests.support.waiting import wait_for

GATEWAYS = 4
STEPS = 6
# The step the gateways post while A's inserts wait on the lock.
KILL_STEP = 3
# Retries of one reading before a gateway gives up on it (a failure here).
ATTEMPTS = 60


@pytest.fixture
def db_url(postgres_url):
    return postgres_url


def reading(gateway: int, step: int) -> dict:
    # Two advertisements a step, each posted by two gateways: one claims,
    # the other meets the claim.
    badge = f"badge-{gateway % 2}"
    item = {"badge_id": badge, "pi_id": f"pi-{gateway}", "beacons": {"b-1": -40 - step}}
    if gateway >= 2:
        # A live reading with observed_at takes the whole way (the view),
        # the others the fast path: both must answer alike.
        item["observed_at"] = datetime.datetime.now(datetime.UTC).isoformat()
    return item


def post(url_port: int, item: dict) -> int | None:
    """The status, or None when the server is gone (no answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", url_port, timeout=60)
    try:
        connection.request(
            "POST",
            "/rssi_readings",
            orjson.dumps(item),
            {"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def server_settings(app_settings, db_url, redis_url, name):
    return {
        **app_settings,
        # A's sessions are found (and ended) by their application name.
        "sqlalchemy.url": f"{db_url}&application_name={name}",
        "stethoscope.dedup.backend": "redis",
        "stethoscope.redis_url": redis_url,
        # A dead process's claims expire sooner: a shorter test.
        "stethoscope.dedup.pending_ms": "1000",
    }


def test_no_reading_answered_201_or_409_is_missing_after_a_kill(
    app_settings, db_url, redis_url, redis_server, engine
):
    servers = [
        ServerProcess(server_settings(app_settings, db_url, redis_url, name))
        for name in ("server-a", "server-b")
    ]
    redis = redis_server.client()
    admin = psycopg.connect(
        db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    )
    lock = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
    ledger: list[tuple[int, int, str, int]] = []
    problems: list[str] = []
    before_kill = threading.Barrier(GATEWAYS + 1)
    locked = threading.Event()

    def gateway(number: int) -> None:
        current = 0
        for step in range(STEPS):
            if step == KILL_STEP:
                before_kill.wait()
                locked.wait()
            item = reading(number, step)
            for _ in range(ATTEMPTS):
                status = post(servers[current].port, item)
                if status is None:
                    current = 1  # A is gone: fail over to B at once
                elif status in (201, 409):
                    key = fingerprint(item["badge_id"], item["beacons"])
                    ledger.append((number, step, key, status))
                    break
                elif status != 503:
                    problems.append(f"gateway {number} step {step}: {status}")
                    return
            else:
                problems.append(f"gateway {number} step {step}: never answered")

    threads = [threading.Thread(target=gateway, args=(n,)) for n in range(GATEWAYS)]
    try:
        for thread in threads:
            thread.start()
        before_kill.wait(timeout=60)
        lock.execute("LOCK TABLE readings IN EXCLUSIVE MODE")
        locked.set()
        pending_keys = [
            RedisDeduplicator.prefix
            + fingerprint(f"badge-{badge}", {"b-1": -40 - KILL_STEP})
            for badge in (0, 1)
        ]

        def a_holds_its_claims() -> bool:
            claims = [redis.get(key) or b"" for key in pending_keys]
            waiting = admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'server-a' AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            return all(claim.startswith(b"p:") for claim in claims) and waiting > 0

        wait_for(a_holds_its_claims, "A to hold both claims, its insert waiting")
        servers[0].kill()
        # A's insert must never commit: its session ends before the lock goes.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'server-a'"
        )
        lock.rollback()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        locked.set()
        for server in servers:
            server.stop()
        redis.close()
        admin.close()
        lock.close()

    assert problems == []
    # Every gateway had every reading answered 201 or 409.
    assert len(ledger) == GATEWAYS * STEPS
    answered = {(number, step) for number, step, _, _ in ledger}
    assert len(answered) == GATEWAYS * STEPS
    with engine.connect() as connection:
        stored = set(connection.scalars(select(Reading.fingerprint)))
    missing = [
        (number, step, status)
        for number, step, key, status in ledger
        if key not in stored
    ]
    assert missing == []
