"""Counting attempts in a fixed window: shared through Redis, or in memory.

Used for login throttling, which must count an attempt *before* the slow
password hash, atomically: checking the count first and recording the
failure after the hash let 30 simultaneous guesses test 12 passwords
against a limit of 5. ``hit`` is that atomic reservation (one INCR with its
expiry in a MULTI block, or the increment under the memory counters' lock);
``give_back`` returns an attempt that turned out not to count.

Like deduplication it must not fail when Redis does: it falls back to
counting in this process for ``retry_interval_ms``, and logs the outage
once. That is failing open as far as sharing goes (each process then
counts on its own), never a login refused because Redis is away.

Why not the ``limits`` library (pypi/warehouse's choice): its strategies
can consume (``hit``) and ``clear`` but not give one attempt back, which a
successful login needs here (it must not use up its address's allowance,
shared by an office behind one address); its storages raise on a Redis
error, so the fallback, its logging and the fail-fast client (ops/redis.py)
would be ours anyway, around a second Redis client and pool of its own.
"""

import logging
import math
import threading
import time

log = logging.getLogger(__name__)


class MemoryRateLimiter:
    """Fixed-window counters kept in this process."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._counters: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window_s: int) -> tuple[int, int]:
        """Count one attempt for ``key``, atomically; return the count in the
        current window (this one included) and the seconds left in it."""
        now = self._clock()
        with self._lock:
            count, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + window_s
            self._counters[key] = (count + 1, expires)
            if len(self._counters) > 10_000:
                self._sweep(now)
        return count + 1, max(1, math.ceil(expires - now))

    def give_back(self, key: str) -> None:
        """Undo one ``hit`` of the current window (none if it has ended)."""
        now = self._clock()
        with self._lock:
            count, expires = self._counters.get(key, (0, 0.0))
            if expires > now and count > 0:
                self._counters[key] = (count - 1, expires)

    def count(self, key: str) -> tuple[int, int]:
        """The count for ``key`` and the seconds until its window ends."""
        now = self._clock()
        count, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            return 0, 0
        return count, math.ceil(expires - now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]


# DECR only a counter that still exists: after its window it must not come
# back as a key without an expiry.
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


class RedisRateLimiter:
    """Fixed-window counters shared by every process through Redis."""

    prefix = "stethoscope:ratelimit:"

    def __init__(self, client, fallback: MemoryRateLimiter, retry_interval_ms=1000):
        self.client = client
        self.fallback = fallback
        self.retry_interval_s = retry_interval_ms / 1000
        self._down_until = 0.0
        self._give_back = client.register_script(_GIVE_BACK)

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._available():
            log.error(
                "Redis unavailable for rate limiting (%s); counting in memory", exc
            )
        self._down_until = time.monotonic() + self.retry_interval_s

    def hit(self, key: str, window_s: int) -> tuple[int, int]:
        if self._available():
            try:
                # MULTI/EXEC: the INCR and its expiry are one step, so no
                # counter outlives its window and none is counted twice.
                pipe = self.client.pipeline(transaction=True)
                pipe.incr(self.prefix + key)
                pipe.expire(self.prefix + key, window_s, nx=True)
                pipe.ttl(self.prefix + key)
                count, _, ttl = pipe.execute()
                return int(count), max(int(ttl), 1)
            except Exception as exc:
                self._failed(exc)
        return self.fallback.hit(key, window_s)

    def give_back(self, key: str) -> None:
        self.fallback.give_back(key)
        if self._available():
            try:
                self._give_back(keys=[self.prefix + key])
            except Exception as exc:
                self._failed(exc)

    def count(self, key: str) -> tuple[int, int]:
        if self._available():
            try:
                pipe = self.client.pipeline()
                pipe.get(self.prefix + key)
                pipe.ttl(self.prefix + key)
                count, ttl = pipe.execute()
                return (int(count), max(int(ttl), 1)) if count else (0, 0)
            except Exception as exc:
                self._failed(exc)
        return self.fallback.count(key)

    def clear(self, key: str) -> None:
        self.fallback.clear(key)
        if self._available():
            try:
                self.client.delete(self.prefix + key)
            except Exception as exc:
                self._failed(exc)
