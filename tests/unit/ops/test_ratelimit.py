import logging
import threading

import pytest

from stethoscope.accounts.services import LoginThrottle, ThrottleLimits
from stethoscope.ops.ratelimit import MemoryRateLimiter, RedisRateLimiter
from stethoscope.ops.redis import redis_client


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def client(redis_url):
    client = redis_client(redis_url, timeout_ms=1000)
    yield client
    client.close()


@pytest.fixture(params=["memory", "redis"])
def limiter(request):
    if request.param == "memory":
        return MemoryRateLimiter()
    return RedisRateLimiter(request.getfixturevalue("client"), MemoryRateLimiter())


def test_simultaneous_hits_are_each_counted_once(limiter):
    start = threading.Barrier(20)
    counts = []

    def hit():
        start.wait()
        counts.append(limiter.hit("k", 60)[0])

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(1, 21))


def test_give_back_undoes_one_hit(limiter):
    limiter.hit("k", 60)
    limiter.hit("k", 60)
    limiter.give_back("k")
    assert limiter.count("k")[0] == 1
    assert limiter.hit("k", 60)[0] == 2


def test_give_back_after_the_window_leaves_nothing(client):
    limiter = RedisRateLimiter(client, MemoryRateLimiter())
    limiter.give_back("gone")
    assert not client.exists(RedisRateLimiter.prefix + "gone")


def test_a_hit_in_redis_carries_its_window(client):
    limiter = RedisRateLimiter(client, MemoryRateLimiter())
    count, ttl = limiter.hit("k", 900)
    assert count == 1 and 890 < ttl <= 900
    assert 890 < client.ttl(RedisRateLimiter.prefix + "k") <= 900


def test_redis_down_counts_in_memory_and_logs_once(tmp_path, caplog):
    missing = redis_client(f"unix://{tmp_path}/nothing.sock", timeout_ms=100)
    limiter = RedisRateLimiter(missing, MemoryRateLimiter(), retry_interval_ms=60_000)
    with caplog.at_level(logging.ERROR):
        assert limiter.hit("k", 60)[0] == 1
        assert limiter.hit("k", 60)[0] == 2
        limiter.give_back("k")
    assert limiter.count("k")[0] == 1
    assert caplog.text.count("Redis unavailable for rate limiting") == 1


class TestLoginThrottle:
    def throttle(self, clock, per_user=2, per_ip=3):
        return LoginThrottle(
            MemoryRateLimiter(clock), ThrottleLimits(per_user, per_ip, window_s=60)
        )

    def test_the_limit_is_reserved_and_a_refusal_takes_nothing(self):
        clock = FakeClock()
        throttle = self.throttle(clock)
        assert throttle.reserve("ann", "192.0.2.1") == 0
        assert throttle.reserve("ann", "192.0.2.1") == 0
        assert throttle.reserve("ann", "192.0.2.1") == 60
        # The refused attempt took nothing from the address.
        assert throttle.limiter.count("login-ip:192.0.2.1")[0] == 2

    def test_allowed_again_once_the_window_is_over(self):
        clock = FakeClock()
        throttle = self.throttle(clock)
        for _ in range(2):
            throttle.reserve("ann", None)
        assert throttle.reserve("ann", None) > 0
        clock.now += 60
        assert throttle.reserve("ann", None) == 0

    def test_success_forgives_the_name_and_returns_the_address_attempt(self):
        throttle = self.throttle(FakeClock())
        throttle.reserve("ann", "192.0.2.1")
        throttle.reserve("ann", "192.0.2.1")
        throttle.succeeded("ann", "192.0.2.1")
        assert throttle.reserve("ann", "192.0.2.1") == 0
        assert throttle.limiter.count("login-ip:192.0.2.1")[0] == 2

    def test_cancel_gives_both_back(self):
        throttle = self.throttle(FakeClock(), per_user=1)
        throttle.reserve("ann", "192.0.2.1")
        throttle.cancel("ann", "192.0.2.1")
        assert throttle.reserve("ann", "192.0.2.1") == 0
