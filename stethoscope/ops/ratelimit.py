"""Counting failures in a fixed window: shared through Redis, or in memory.

Used for login throttling. Like deduplication, it must not fail when Redis
does: it falls back to counting in this process for ``retry_interval_ms``.
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

    def hit(self, key: str, window_s: int) -> int:
        """Count one event for ``key``; return the count in the current window."""
        now = self._clock()
        with self._lock:
            count, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + window_s
            self._counters[key] = (count + 1, expires)
            if len(self._counters) > 10_000:
                self._sweep(now)
            return count + 1

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


class RedisRateLimiter:
    """Fixed-window counters shared by every process through Redis."""

    prefix = "stethoscope:ratelimit:"

    def __init__(self, client, fallback: MemoryRateLimiter, retry_interval_ms=1000):
        self.client = client
        self.fallback = fallback
        self.retry_interval_s = retry_interval_ms / 1000
        self._down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._available():
            log.error(
                "Redis unavailable for rate limiting (%s); counting in memory", exc
            )
        self._down_until = time.monotonic() + self.retry_interval_s

    def hit(self, key: str, window_s: int) -> int:
        if self._available():
            try:
                pipe = self.client.pipeline()
                pipe.incr(self.prefix + key)
                pipe.expire(self.prefix + key, window_s, nx=True)
                count, _ = pipe.execute()
                return int(count)
            except Exception as exc:
                self._failed(exc)
        return self.fallback.hit(key, window_s)

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
