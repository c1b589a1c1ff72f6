"""Redis frozen, then killed, while gateways post: every post is answered
while Redis is still out and stored, and ingest returns to Redis once it is
back.

The app, served by waitress, deduplicates through a redis-server of this
test's own, on PostgreSQL (Redis is what several processes share).
Gateways post all along (two gateways hear each advertisement; half of
them take the fast path, half the whole way) while the test

* freezes redis-server (SIGSTOP): connections stay open and commands are
  accepted but never answered, as from a Redis stalled on its host; only
  the client's socket timeout ends each wait;
* thaws it (SIGCONT) and awaits a reading claimed in Redis again;
* kills it (SIGKILL): connections are refused at once;
* starts it again on the same socket and awaits a claim in Redis again.

"Never hang" is the property: a post waits for Redis at most
``stethoscope.redis.timeout_ms`` (one command; after a failure the process
leaves Redis alone for ``retry_interval_ms``) and for another request's
claim at most ``dedup.pending_wait_ms``; the configured values keep that
under half of ``BOUND_S`` (a check of the settings). What the tests
observe is an order of events, not a time: before Redis comes back, the
gateways stop sending and every post in flight must be answered while
Redis is still frozen or dead; a post that waited on Redis would only be
answered after. A ledger is kept as in test_ingest_failover: every reading
answered 201 or 409 must be stored afterwards.
"""

import collections
import contextlib
import datetime
import os
import shutil
import signal
import threading
import time

import psycopg
import pytest
from sqlalchemy import select

from stethoscope.config import parse_settings
from stethoscope.ingest.dedup import RedisDeduplicator
from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import fingerprint
from stethoscope.singletons import DEDUPLICATOR
from tests.support.servers import ThreadedServer, post_json
from tests.support.services import RedisServer, private_directory
from tests.support.waiting import wait_for

GATEWAYS = 4
# What a gateway may wait before it counts an answer as a hang; the
# configured waits must leave half of it for the database.
BOUND_S = 1.0
# How long a gateway's client waits for an answer before it sends again.
GATEWAY_PATIENCE_S = 10
# Readings stored in each phase without Redis before it comes back.
STORED_WITHOUT_REDIS = 30
# Retries of one reading answered 503 before a gateway gives up on it.
ATTEMPTS = 20


@pytest.fixture
def db_url(postgres_url):
    return postgres_url


@pytest.fixture
def own_redis():
    """A redis-server to freeze and kill (the session's is everyone's)."""
    server = RedisServer(private_directory("stethoscope-redis-")).start()
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


def reading(gateway: int, step: int) -> dict:
    # Gateways n and n + 2 hear the same badge: one claims each
    # advertisement, the other meets the claim.
    beacons = {"b-1": -40 - step % 60, "b-2": -30 - step // 60 % 90}
    item = {
        "badge_id": f"badge-{gateway % 2}",
        "pi_id": f"pi-{gateway}",
        "beacons": beacons,
    }
    if gateway >= 2:
        # observed_at: the whole way (the view) rather than the fast path.
        item["observed_at"] = datetime.datetime.now(datetime.UTC).isoformat()
    return item


def key(item: dict) -> str:
    return fingerprint(item["badge_id"], item["beacons"])


def stored(engine) -> dict[str, int]:
    """How many times each fingerprint is stored."""
    with engine.connect() as connection:
        return collections.Counter(connection.scalars(select(Reading.fingerprint)))


def dedup_settings(app_settings, redis_server, **overrides) -> dict:
    return {
        **app_settings,
        "stethoscope.dedup.backend": "redis",
        "stethoscope.redis_url": redis_server.url,
        **overrides,
    }


class Posts:
    """The gateways' posts, which the test can hold back and drain."""

    def __init__(self):
        self.condition = threading.Condition()
        self.open = True
        self.in_flight = 0

    @contextlib.contextmanager
    def one(self):
        with self.condition:
            self.condition.wait_for(lambda: self.open)
            self.in_flight += 1
        try:
            yield
        finally:
            with self.condition:
                self.in_flight -= 1

    def hold(self) -> None:
        with self.condition:
            self.open = False

    def drained(self) -> bool:
        with self.condition:
            return self.in_flight == 0

    def release(self) -> None:
        with self.condition:
            self.open = True
            self.condition.notify_all()


def bound_holds(settings) -> bool:
    """The waits a post may meet leave half the bound for everything else."""
    configured = parse_settings(settings, environ={})
    waits_ms = (
        configured["stethoscope.redis.timeout_ms"]
        + configured["stethoscope.dedup.pending_wait_ms"]
    )
    return waits_ms / 1000 <= BOUND_S / 2


def test_redis_frozen_or_killed_every_post_answered_and_stored(
    make_app, app_settings, own_redis, engine
):
    # Redis is tried again this often during an outage: several tries, each
    # a full timeout while it is frozen, in a short test.
    retry_interval_s = 0.2
    settings = dedup_settings(
        app_settings,
        own_redis,
        **{"stethoscope.redis.retry_interval_ms": str(int(retry_interval_s * 1000))},
    )
    assert bound_holds(settings)
    app = make_app.wsgi(**settings)
    deduplicator = app.registry[DEDUPLICATOR]
    server = ThreadedServer(app, threads=8)
    redis = own_redis.client()
    phase = ["up"]
    posts = Posts()
    # (phase when sent, gateway, step, reading, status)
    answers: list[tuple[str, int, int, dict, int]] = []
    problems: list[str] = []
    done = threading.Event()

    def gateway(number: int) -> None:
        step = 0
        while not done.is_set():
            item = reading(number, step)
            for _ in range(ATTEMPTS):
                with posts.one():
                    if done.is_set():
                        return
                    sent_in = phase[0]
                    answer = post_json(server.port, "/rssi_readings", item)
                if answer is None:
                    problems.append(f"pi-{number} step {step}: no answer")
                    return
                answers.append((sent_in, number, step, item, answer.status))
                if answer.status in (201, 409):
                    break
                if answer.status != 503:  # 503: a claim pending elsewhere
                    problems.append(f"pi-{number} step {step}: {answer.status}")
                    return
            else:
                problems.append(f"pi-{number} step {step}: 503 every time")
                return
            step += 1

    def claimed_in_redis(name: str) -> bool:
        """A reading stored in phase ``name`` whose claim Redis holds committed."""
        for sent_in, *_, item, status in list(answers):
            if sent_in == name and status == 201:
                claim = redis.get(RedisDeduplicator.prefix + key(item))
                if claim is not None and claim.startswith(b"c:"):
                    return True
        return problems != []

    def outage(name: str) -> None:
        """Post through an outage of Redis: several of the process's tries,
        and readings stored without it; then hold the gateways back until
        every post in flight is answered, Redis still out."""
        phase[0] = name
        fallbacks = deduplicator.fallbacks
        ends = time.monotonic() + 5 * retry_interval_s

        def long_enough() -> bool:
            stored = sum(a[0] == name and a[4] == 201 for a in answers)
            return problems != [] or (
                stored >= STORED_WITHOUT_REDIS and time.monotonic() >= ends
            )

        wait_for(long_enough, f"readings stored while Redis is {name}")
        assert deduplicator.fallbacks > fallbacks
        posts.hold()
        wait_for(posts.drained, f"every post in flight answered, Redis {name}")

    threads = [threading.Thread(target=gateway, args=(n,)) for n in range(GATEWAYS)]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: claimed_in_redis("up"), "readings claimed in Redis")

        os.kill(own_redis.process.pid, signal.SIGSTOP)
        outage("frozen")
        os.kill(own_redis.process.pid, signal.SIGCONT)
        phase[0] = "thawed"
        posts.release()
        wait_for(lambda: claimed_in_redis("thawed"), "claims in Redis once thawed")

        os.kill(own_redis.process.pid, signal.SIGKILL)
        own_redis.process.wait(timeout=10)
        outage("killed")
        own_redis.start()
        redis.close()
        redis = own_redis.client()
        phase[0] = "restarted"
        posts.release()
        wait_for(lambda: claimed_in_redis("restarted"), "claims in the new Redis")
    finally:
        done.set()
        posts.release()
        for thread in threads:
            thread.join(timeout=60)
        server.stop()
        redis.close()
    assert not any(thread.is_alive() for thread in threads)

    assert problems == []
    in_database = stored(engine)
    missing = [
        (sent_in, number, step, status)
        for sent_in, number, step, item, status in answers
        if status in (201, 409) and key(item) not in in_database
    ]
    assert missing == []


def test_a_batch_whose_claims_settle_while_redis_is_frozen_is_answered(
    make_app, app_settings, own_redis, db_url, engine
):
    """Each claim of a batch is confirmed after the commit: once one confirm
    has timed out, the others must not wait a timeout each (100 claims would
    hold the gateway 25 s, past its client's patience, and it would send the
    batch again). The readings table is locked so that the batch's claims
    are taken and its insert waits; Redis is frozen; the lock goes, and the
    gateway must have its answer, Redis still frozen, before it gives up."""
    settings = dedup_settings(app_settings, own_redis)
    assert bound_holds(settings)
    server = ThreadedServer(make_app.wsgi(**settings), threads=8)
    redis = own_redis.client()
    now = datetime.datetime.now(datetime.UTC).isoformat()
    batch = [{**reading(0, step), "observed_at": now} for step in range(100)]
    keys = [RedisDeduplicator.prefix + key(item) for item in batch]
    lock = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
    answered: list = []

    def gateway() -> None:
        answered.append(
            post_json(server.port, "/rssi_readings", batch, GATEWAY_PATIENCE_S)
        )

    thread = threading.Thread(target=gateway)
    try:
        lock.execute("LOCK TABLE readings IN EXCLUSIVE MODE")
        thread.start()
        wait_for(
            lambda: all((redis.get(k) or b"").startswith(b"p:") for k in keys),
            "the batch's claims, pending in Redis",
        )
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        lock.rollback()
        wait_for(
            lambda: all(key(item) in stored(engine) for item in batch),
            "the batch committed",
        )
        thread.join(timeout=60)
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
        lock.close()
        thread.join(timeout=60)
        server.stop()
        redis.close()

    (answer,) = answered
    # None: the gateway gave up waiting, while its confirms timed out one
    # by one against the frozen Redis.
    assert answer is not None and answer.status == 200
    assert answer.json()["created"] == len(batch)
    assert all(stored(engine).get(key(item)) == 1 for item in batch)
