"""Deduplication of badge advertisements: in memory, or shared through Redis.

A badge repeats the same advertisement about once a second for ~5 s and every
gateway in range posts each one, so ~95 % of POSTs are duplicates. The first
one claims the advertisement's fingerprint for ``window_ms``; the rest are
answered 409 without touching the database.
"""

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass

from zope.interface import implementer

from ..ops.redis import LuaScript, ThreadConnections, redis_client
from .interfaces import IDeduplicator

log = logging.getLogger(__name__)

_tokens = itertools.count()
_process_tag = f"{os.getpid()}-{time.monotonic_ns()}"


@dataclass(frozen=True)
class Claim:
    key: str
    token: str
    # The deduplicator that granted the claim: after a Redis failure the
    # memory fallback grants it and must also confirm or release it.
    owner: object
    # When the window ends (wall-clock seconds), counted from the claim and
    # not from the commit, so that every process agrees on it.
    expires_at: float = 0.0


def _new_token() -> str:
    return f"p:{_process_tag}-{next(_tokens)}"


class ExpiringMap:
    """A thread-safe map whose entries expire; expired ones are swept lazily."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._entries: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str):
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def add(self, key: str, value, ttl_s: float) -> bool:
        """Store ``value`` unless a live entry exists; True when stored."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                return False
            self._entries[key] = (now + ttl_s, value)
            self._sweep_if_due(now, ttl_s)
        return True

    def put(self, key: str, value, ttl_s: float) -> None:
        now = self._clock()
        with self._lock:
            self._entries[key] = (now + ttl_s, value)
            self._sweep_if_due(now, ttl_s)

    def discard(self, key: str, value) -> None:
        """Remove ``key`` if it still holds ``value``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] == value:
                del self._entries[key]

    def _sweep_if_due(self, now: float, ttl_s: float) -> None:
        if now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + max(ttl_s, 1.0)

    def _sweep(self, now: float) -> None:
        expired = [key for key, (expires, _) in self._entries.items() if expires <= now]
        for key in expired:
            del self._entries[key]


@implementer(IDeduplicator)
class MemoryDeduplicator:
    """Claims kept in this process: the embedded default and Redis's fallback."""

    def __init__(self, window_ms: int, clock=time.monotonic):
        self.window_ms = window_ms
        self._claims = ExpiringMap(clock)

    def claim(self, fingerprint: str) -> Claim | None:
        claim = Claim(fingerprint, _new_token(), self)
        if self._claims.add(fingerprint, claim.token, self.window_ms / 1000):
            return claim
        return None

    def claimed(self, fingerprint: str) -> bool:
        return self._claims.get(fingerprint) is not None

    known_duplicate = known_here = claimed

    def confirm(self, claim: Claim) -> None:
        pass

    def status(self) -> dict:
        return {"backend": "memory", "claims": len(self._claims)}

    def release(self, claim: Claim) -> None:
        self._claims.discard(claim.key, claim.token)


# Confirm and release act only on our own claim: after a slow request the
# key may have expired and been claimed by someone else.
_CONFIRM = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
""")
_RELEASE = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""")


@implementer(IDeduplicator)
class RedisDeduplicator:
    """Claims shared by every process through Redis, with two refinements.

    * A per-process cache of *committed* claims answers most duplicates with
      no Redis round trip. A claim's value in Redis is ``p:<token>`` while its
      transaction is open and ``c:<expiry ms>`` once committed; ``SET NX GET``
      (and ``known_duplicate``'s GET) return the value found, so any process
      that meets a committed claim caches it until it expires. Another
      process's pending claim is never cached, because it may yet be
      released; this process's own pending claims are known here until
      confirmed or released (the same answer Redis would give).
    * A pending claim lives ``pending_ms`` (2 s), not the whole window, and is
      extended to the window when confirmed. If the process holding it dies
      before committing, the badge's next repeat of the same advertisement
      (it repeats it every second for ~5 s) is stored instead of being
      refused as a duplicate of a reading that was never stored.
    * Redis trouble must not stop ingest: any Redis error falls back to the
      in-process deduplicator for ``retry_interval_ms`` (a stray duplicate
      stored is cheap, a lost reading is not), counted and logged once per
      outage.
    """

    prefix = "stethoscope:dedup:"

    def __init__(
        self,
        client,
        window_ms: int,
        fallback: MemoryDeduplicator,
        retry_interval_ms: int = 1000,
        pending_ms: int = 2000,
        clock=time.monotonic,
        wall_clock=time.time,
    ):
        self.window_ms = window_ms
        self.pending_ms = min(pending_ms, window_ms)
        self.client = client
        self.fallback = fallback
        self.retry_interval_s = retry_interval_ms / 1000
        self.fallbacks = 0
        self.cache_hits = 0
        self._clock = clock
        self._wall_clock = wall_clock
        self._committed = ExpiringMap(clock)
        self._pending = ExpiringMap(clock)
        # The hot path's commands skip the client's own layers (ThreadConnections).
        self._redis = ThreadConnections(client)
        self._down_until = 0.0
        self._down = False
        self._state_lock = threading.Lock()

    def claim(self, fingerprint: str) -> Claim | None:
        key = self.prefix + fingerprint
        if self._known_here(key):
            return None
        if self._redis_down():
            return self._fall_back(fingerprint)
        token = _new_token()
        asked = self._clock()
        expires_at = self._wall_clock() + self.window_ms / 1000
        try:
            found = self._redis.execute(
                "SET", key, token, "NX", "PX", self.pending_ms, "GET"
            )
        except Exception as exc:  # any redis or socket error: see the class doc
            self._failed(exc)
            return self._fall_back(fingerprint)
        self._recovered()
        # Our own token: the SET took effect before a broken connection was
        # replaced, and was sent again (ThreadConnections).
        if found is None or found == token.encode():
            # Counted from before the SET: never live here longer than in Redis.
            self._pending.put(
                key, token, self.pending_ms / 1000 - (self._clock() - asked)
            )
            return Claim(key, token, self, expires_at)
        self._learn(key, found)
        return None

    def known_here(self, fingerprint: str) -> bool:
        """A committed claim cached here, or a pending claim of this process."""
        return self._known_here(self.prefix + fingerprint)

    def known_duplicate(self, fingerprint: str) -> bool:
        """Known here, or claimed in Redis (a GET: no claim is made)."""
        key = self.prefix + fingerprint
        if self._known_here(key):
            return True
        if self._redis_down():
            return False
        try:
            found = self._redis.execute("GET", key)
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        if found is None:
            return False
        self._learn(key, found)
        return True

    def _known_here(self, key: str) -> bool:
        if self._committed.get(key) is not None or self._pending.get(key) is not None:
            self.cache_hits += 1
            return True
        return False

    def _redis_down(self) -> bool:
        return self._down and self._clock() < self._down_until

    def _learn(self, key: str, found: bytes) -> None:
        if found.startswith(b"c:"):
            self._cache_committed(key, int(found[2:]) / 1000)

    def claimed(self, fingerprint: str) -> bool:
        key = self.prefix + fingerprint
        if self._committed.get(key) is not None:
            return True
        try:
            return bool(self.client.exists(key))
        except Exception:
            return self.fallback.claimed(fingerprint)

    def confirm(self, claim: Claim) -> None:
        if claim.owner is not self:
            claim.owner.confirm(claim)
            return
        self._cache_committed(claim.key, claim.expires_at)
        self._pending.discard(claim.key, claim.token)
        expires_ms = int(claim.expires_at * 1000)
        remaining_ms = max(1, expires_ms - int(self._wall_clock() * 1000))
        try:
            _CONFIRM(
                self._redis,
                keys=[claim.key],
                args=[claim.token, f"c:{expires_ms}", remaining_ms],
            )
        except Exception as exc:
            # The claim stays pending in Redis until it expires: others still
            # answer 409, they just cannot cache it.
            self._failed(exc)

    def release(self, claim: Claim) -> None:
        if claim.owner is not self:
            claim.owner.release(claim)
            return
        self._pending.discard(claim.key, claim.token)
        try:
            _RELEASE(self._redis, keys=[claim.key], args=[claim.token])
        except Exception as exc:
            # Until Redis answers again we deduplicate in memory, so the retry
            # of this very request is not refused by our stale claim.
            self._failed(exc)

    def _cache_committed(self, key: str, expires_at: float) -> None:
        remaining_s = expires_at - self._wall_clock()
        if remaining_s > 0:
            self._committed.put(key, True, remaining_s)

    def status(self) -> dict:
        try:
            self.client.ping()
            reachable = True
        except Exception:
            reachable = False
        return {
            "backend": "redis",
            "redis": "ok" if reachable else "unavailable",
            "fallbacks": self.fallbacks,
            "cache_hits": self.cache_hits,
        }

    def _fall_back(self, fingerprint: str) -> Claim | None:
        with self._state_lock:
            self.fallbacks += 1
        return self.fallback.claim(fingerprint)

    def _failed(self, exc: Exception) -> None:
        with self._state_lock:
            self._down_until = self._clock() + self.retry_interval_s
            if not self._down:
                self._down = True
                log.error(
                    "Redis unavailable (%s); deduplicating in this process until "
                    "it answers again",
                    exc,
                )

    def _recovered(self) -> None:
        if self._down:
            with self._state_lock:
                if self._down:
                    self._down = False
                    log.warning(
                        "Redis answers again; %d claims fell back to memory",
                        self.fallbacks,
                    )


def make_deduplicator(settings, client=None) -> IDeduplicator:
    """The deduplicator chosen by ``stethoscope.dedup.backend``."""
    memory = MemoryDeduplicator(settings["stethoscope.dedup.window_ms"])
    if settings["stethoscope.dedup.backend"] == "memory":
        return memory
    if client is None:
        client = redis_client(
            settings["stethoscope.redis_url"], settings["stethoscope.redis.timeout_ms"]
        )
    return RedisDeduplicator(
        client,
        settings["stethoscope.dedup.window_ms"],
        fallback=memory,
        retry_interval_ms=settings["stethoscope.redis.retry_interval_ms"],
        pending_ms=settings["stethoscope.dedup.pending_ms"],
    )
