import socket
import threading

import pytest

from stethoscope.ingest.dedup import (
    ClaimPending,
    ExpiringMap,
    MemoryDeduplicator,
    RedisDeduplicator,
    make_deduplicator,
)
from stethoscope.ops.redis import redis_client
from tests.support.services import RedisServer
from tests.support.waiting import wait_for


def waiters(event: threading.Event) -> int:
    """Threads waiting on ``event`` now (CPython's Condition keeps them)."""
    return len(event._cond._waiters)


def in_thread(function, *args):
    """Run ``function`` on a thread; returns the thread and its outcome."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


# A deadline already passed: a pending claim met is ClaimPending at once.
NO_WAIT = 0.0


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class TestExpiringMap:
    def test_add_refuses_a_live_entry_and_takes_an_expired_one(self):
        clock = FakeClock()
        entries = ExpiringMap(clock)
        assert entries.add("k", "first", ttl_s=5)
        assert not entries.add("k", "second", ttl_s=5)
        assert entries.get("k") == "first"
        clock.advance(5)
        assert entries.get("k") is None
        assert entries.add("k", "third", ttl_s=5)
        assert entries.get("k") == "third"

    def test_discard_only_removes_the_given_value(self):
        entries = ExpiringMap(FakeClock())
        entries.add("k", "mine", ttl_s=5)
        entries.discard("k", "someone else's")
        assert entries.get("k") == "mine"
        entries.discard("k", "mine")
        assert entries.get("k") is None

    @pytest.mark.parametrize("method", ["add", "put"])
    def test_expired_entries_are_swept(self, method):
        clock = FakeClock()
        entries = ExpiringMap(clock)
        for i in range(100):
            getattr(entries, method)(f"k{i}", i, ttl_s=1)
        clock.advance(2)
        getattr(entries, method)("fresh", 0, ttl_s=1)
        assert len(entries) == 1


class TestMemoryDeduplicator:
    def test_claim_within_window_is_a_duplicate(self):
        clock = FakeClock()
        dedup = MemoryDeduplicator(window_ms=5500, clock=clock)
        claim = dedup.claim("fp")
        assert claim is not None
        dedup.confirm(claim)
        clock.advance(5.4)
        assert dedup.claim("fp") is None
        clock.advance(0.2)
        assert dedup.claim("fp") is not None

    def test_known_here_is_a_committed_claim(self):
        clock = FakeClock()
        dedup = MemoryDeduplicator(window_ms=5500, clock=clock)
        assert not dedup.known_here("fp")
        claim = dedup.claim("fp")
        assert not dedup.known_here("fp")  # pending: claim waits for it
        dedup.confirm(claim)
        assert dedup.known_here("fp")
        clock.advance(5.5)
        assert not dedup.known_here("fp")

    def test_pending_claim_is_not_a_duplicate_yet(self):
        dedup = MemoryDeduplicator(window_ms=5500, retry_after_s=2)
        dedup.claim("fp")
        with pytest.raises(ClaimPending) as raised:
            dedup.claim("fp", NO_WAIT)
        assert raised.value.status == 503
        assert raised.value.headers["Retry-After"] == "2"

    def test_pending_claim_confirmed_while_waiting_is_a_duplicate(self):
        dedup = MemoryDeduplicator(window_ms=5500, pending_wait_ms=60_000)
        claim = dedup.claim("fp")
        thread, outcome = in_thread(dedup.claim, "fp")
        wait_for(lambda: waiters(claim.held.settled) == 1, "the second post to wait")
        dedup.confirm(claim)
        thread.join()
        assert outcome == {"value": None}

    def test_pending_claim_released_while_waiting_is_claimed(self):
        dedup = MemoryDeduplicator(window_ms=5500, pending_wait_ms=60_000)
        claim = dedup.claim("fp")
        thread, outcome = in_thread(dedup.claim, "fp")
        wait_for(lambda: waiters(claim.held.settled) == 1, "the second post to wait")
        dedup.release(claim)
        thread.join()
        assert outcome["value"] is not None
        assert outcome["value"].token != claim.token
        assert not dedup.known_here("fp")  # the new claim is pending

    def test_released_claim_can_be_claimed_again(self):
        dedup = MemoryDeduplicator(window_ms=5500, clock=FakeClock())
        claim = dedup.claim("fp")
        dedup.release(claim)
        assert dedup.claim("fp") is not None

    def test_late_release_does_not_drop_a_newer_claim(self):
        clock = FakeClock()
        dedup = MemoryDeduplicator(window_ms=1000, clock=clock)
        old = dedup.claim("fp")
        clock.advance(2)
        new = dedup.claim("fp")
        dedup.release(old)
        assert new is not None
        with pytest.raises(ClaimPending):
            dedup.claim("fp", NO_WAIT)

    def test_concurrent_claims_grant_exactly_one(self):
        dedup = MemoryDeduplicator(window_ms=5500)
        barrier = threading.Barrier(8)
        granted = []

        def claim():
            barrier.wait()
            try:
                granted.append(dedup.claim("fp", NO_WAIT))
            except ClaimPending as pending:
                granted.append(pending)

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        claims = [claim for claim in granted if not isinstance(claim, ClaimPending)]
        # One claim; the others met it pending (never "duplicate").
        assert len(claims) == 1 and claims[0] is not None


@pytest.fixture
def client(redis_url):
    client = redis_client(redis_url, timeout_ms=1000)
    yield client
    client.close()


def redis_dedup(client, **kwargs):
    kwargs.setdefault("window_ms", 5500)
    return RedisDeduplicator(
        client, fallback=MemoryDeduplicator(kwargs["window_ms"]), **kwargs
    )


class TestRedisDeduplicator:
    def test_claim_is_shared_between_processes(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        claim = first.claim("fp")
        assert claim is not None
        with pytest.raises(ClaimPending):
            second.claim("fp", NO_WAIT)
        key = RedisDeduplicator.prefix + "fp"
        assert client.get(key) == claim.token.encode()
        # Pending: a short life, in case this process dies before commit.
        assert 1500 < client.pttl(key) <= 2000

    def test_release_lets_another_process_claim(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        first.release(first.claim("fp"))
        assert second.claim("fp") is not None

    def test_release_of_an_expired_claim_spares_the_new_owner(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        old = first.claim("fp")
        client.delete(RedisDeduplicator.prefix + "fp")  # as if it expired
        new = second.claim("fp")
        first.release(old)
        assert client.get(RedisDeduplicator.prefix + "fp") == new.token.encode()

    def test_committed_claim_is_cached_without_a_round_trip(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        first.confirm(first.claim("fp"))
        key = RedisDeduplicator.prefix + "fp"
        assert client.get(key).startswith(b"c:")
        assert 5000 < client.pttl(key) <= 5500  # extended to the whole window
        assert second.claim("fp") is None  # learns it is committed
        client.delete(key)
        # Now answered from the cache: Redis no longer has the key.
        assert second.claim("fp") is None
        assert second.cache_hits == 1

    def test_claim_of_a_process_that_died_is_never_a_duplicate(self, client):
        dying = redis_dedup(client, pending_ms=100)
        dying.claim("fp")  # and never confirms nor releases
        other = redis_dedup(client, pending_ms=2000)
        with pytest.raises(ClaimPending) as raised:
            other.claim("fp", NO_WAIT)
        assert raised.value.headers["Retry-After"] == "2"
        # Waited for long enough, it expires and is claimed by the waiter.
        patient = redis_dedup(client, pending_wait_ms=60_000)
        claim = patient.claim("fp")
        assert claim is not None
        assert client.get(claim.key) == claim.token.encode()

    def test_pending_claim_is_not_cached(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        claim = first.claim("fp")
        with pytest.raises(ClaimPending):
            second.claim("fp", NO_WAIT)
        first.release(claim)
        assert second.claim("fp") is not None

    def test_another_process_confirming_while_we_wait_is_a_duplicate(self, client):
        first = redis_dedup(client)
        second = redis_dedup(client, pending_wait_ms=60_000)
        claim = first.claim("fp")
        thread, outcome = in_thread(second.claim, "fp")
        first.confirm(claim)
        thread.join()
        assert outcome == {"value": None}
        client.delete(claim.key)
        assert second.known_here("fp")  # and remembered as committed

    def test_another_process_releasing_while_we_wait_lets_us_claim(self, client):
        first = redis_dedup(client)
        second = redis_dedup(client, pending_wait_ms=60_000)
        claim = first.claim("fp")
        thread, outcome = in_thread(second.claim, "fp")
        first.release(claim)
        thread.join()
        mine = outcome["value"]
        assert mine is not None and mine.owner is second
        assert client.get(mine.key) == mine.token.encode()

    def test_a_committed_claim_costs_no_wait(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        first.confirm(first.claim("fp"))
        # The deadline has passed: only a claim found committed answers None.
        assert second.claim("fp", NO_WAIT) is None
        assert first.claim("fp", NO_WAIT) is None

    def test_own_pending_claim_is_waited_for_without_a_round_trip(self, client):
        dedup = redis_dedup(client, pending_wait_ms=60_000)
        claim = dedup.claim("fp")
        client.delete(RedisDeduplicator.prefix + "fp")
        # Redis no longer has it: only this process's memory knows of it.
        assert not dedup.known_duplicate("fp")  # pending: claim decides
        with pytest.raises(ClaimPending):
            dedup.claim("fp", NO_WAIT)
        thread, outcome = in_thread(dedup.claim, "fp")
        wait_for(lambda: waiters(claim.held.settled) == 1, "the second post to wait")
        dedup.confirm(claim)
        thread.join()
        assert outcome == {"value": None}
        assert dedup.known_duplicate("fp")

    def test_own_pending_claim_released_while_waiting_is_claimed(self, client):
        dedup = redis_dedup(client, pending_wait_ms=60_000)
        claim = dedup.claim("fp")
        thread, outcome = in_thread(dedup.claim, "fp")
        wait_for(lambda: waiters(claim.held.settled) == 1, "the second post to wait")
        dedup.release(claim)
        thread.join()
        mine = outcome["value"]
        assert mine is not None and mine.token != claim.token
        assert client.get(mine.key) == mine.token.encode()

    def test_known_duplicate_asks_redis_without_claiming(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        assert not second.known_duplicate("fp")
        assert client.get(RedisDeduplicator.prefix + "fp") is None  # no claim
        claim = first.claim("fp")
        # Another process's pending claim: not a duplicate yet (ask claim).
        assert not second.known_duplicate("fp")
        first.release(claim)
        assert not second.known_duplicate("fp")
        first.confirm(first.claim("fp"))
        assert second.known_duplicate("fp")
        client.delete(RedisDeduplicator.prefix + "fp")
        assert second.known_duplicate("fp")  # committed: remembered

    def test_known_here_never_asks_redis(self, client):
        first, second = redis_dedup(client), redis_dedup(client)
        claim = first.claim("fp")
        assert not first.known_here("fp")  # its own claim, pending
        assert not second.known_here("fp")  # in Redis, but not known here
        first.confirm(claim)
        assert second.claim("fp") is None  # meets the committed claim...
        client.delete(RedisDeduplicator.prefix + "fp")
        assert second.known_here("fp")  # ...and remembers it

    def test_known_duplicate_with_redis_down_says_ask_claim(self, tmp_path):
        missing = redis_client(f"unix://{tmp_path}/nothing.sock", timeout_ms=250)
        dedup = redis_dedup(missing, retry_interval_ms=60_000)
        assert not dedup.known_duplicate("fp")
        assert dedup.claim("fp").owner is dedup.fallback
        assert dedup.fallbacks == 1

    def test_cached_claim_expires_with_its_window(self, client):
        clock, wall = FakeClock(), FakeClock(1_700_000_000.0)
        owner = redis_dedup(client, clock=clock, wall_clock=wall)
        owner.confirm(owner.claim("fp"))
        client.delete(RedisDeduplicator.prefix + "fp")
        assert owner.claim("fp") is None
        clock.advance(5.6)
        assert owner.claim("fp") is not None

    def test_redis_down_falls_back_to_memory(self, tmp_path, caplog):
        missing = redis_client(f"unix://{tmp_path}/nothing.sock", timeout_ms=250)
        dedup = redis_dedup(missing, retry_interval_ms=60_000)
        claim = dedup.claim("fp")
        assert claim is not None and claim.owner is dedup.fallback
        with pytest.raises(ClaimPending):
            dedup.claim("fp", NO_WAIT)
        dedup.release(claim)
        assert dedup.claim("fp") is not None
        assert dedup.fallbacks == 3
        outage_logs = [r for r in caplog.records if "Redis unavailable" in r.message]
        assert len(outage_logs) == 1

    def test_redis_that_never_answers_times_out(self, tmp_path):
        # A server that accepts connections and then says nothing: the bounded
        # socket timeout must turn it into a fallback, not a hung request.
        path = str(tmp_path / "silent.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(8)
        try:
            client = redis_client(f"unix://{path}", timeout_ms=50)
            dedup = redis_dedup(client)
            claim = dedup.claim("fp")
            assert claim is not None and claim.owner is dedup.fallback
            assert dedup.status()["redis"] == "unavailable"
        finally:
            listener.close()

    def test_recovers_when_redis_answers_again(self, tmp_path, caplog):
        server = RedisServer(tmp_path).start()
        client = redis_client(server.url, timeout_ms=250)
        try:
            dedup = redis_dedup(client, retry_interval_ms=0)
            assert dedup.claim("zero").owner is dedup
            server.stop()
            assert dedup.claim("one").owner is dedup.fallback
            server.start()
            claim = dedup.claim("two")
            assert claim.owner is dedup
            assert dedup.fallbacks == 1
            assert "Redis answers again" in caplog.text
        finally:
            client.close()
            server.stop()

    def test_a_dropped_connection_costs_no_fallback(self, client):
        dedup = redis_dedup(client)
        assert dedup.claim("zero").owner is dedup  # this thread is connected
        # The server drops every connection but the killer's (as a restart
        # would): the claim goes out again on a new connection.
        client.client_kill_filter(_type="normal", skipme=True)
        claim = dedup.claim("one")
        assert claim.owner is dedup
        assert dedup.fallbacks == 0
        assert client.get(claim.key) == claim.token.encode()

    def test_a_claim_sent_twice_is_still_ours(self, client):
        # The SET took effect, the connection broke before its reply, and it
        # was sent again: Redis answers with our own token, not a duplicate.
        dedup = redis_dedup(client)
        connections = dedup._redis

        class SentTwice:
            def execute(self, *args):
                connections.execute(*args)
                return connections.execute(*args)

        dedup._redis = SentTwice()
        claim = dedup.claim("fp")
        assert claim is not None and claim.owner is dedup
        assert client.get(claim.key) == claim.token.encode()
        with pytest.raises(ClaimPending):  # and others see it
            redis_dedup(client).claim("fp", NO_WAIT)


def test_make_deduplicator_chooses_the_backend(redis_url):
    settings = {
        "stethoscope.dedup.window_ms": 5500,
        "stethoscope.dedup.backend": "memory",
        "stethoscope.redis_url": None,
        "stethoscope.redis.timeout_ms": 250,
        "stethoscope.redis.retry_interval_ms": 1000,
        "stethoscope.dedup.pending_ms": 2000,
        "stethoscope.dedup.pending_wait_ms": 250,
    }
    memory = make_deduplicator(settings)
    assert isinstance(memory, MemoryDeduplicator)
    assert (memory.pending_wait_ms, memory.retry_after_s) == (250, 2)
    settings.update(
        {"stethoscope.dedup.backend": "redis", "stethoscope.redis_url": redis_url}
    )
    dedup = make_deduplicator(settings)
    assert isinstance(dedup, RedisDeduplicator)
    assert dedup.status()["redis"] == "ok"
    assert dedup.client.get_connection_kwargs()["socket_timeout"] == 0.25
