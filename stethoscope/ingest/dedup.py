"""Deduplication of badge advertisements: in memory, or shared through Redis.

A badge repeats the same advertisement about once a second for ~5 s and every
gateway in range posts each one, so ~95 % of POSTs are duplicates. The first
one claims the advertisement's fingerprint for ``window_ms``; the rest are
answered 409 without touching the database.

A 409 tells the gateway to forget the reading, so it may only be said of a
claim whose reading is committed. A claim still *pending* (its request has
not committed yet, or its process died before it could) is waited for, a
short bounded while (``pending_wait_ms``): committed then, a duplicate;
released or expired, claimed and stored by this request; still pending,
``ClaimPending`` (503 with Retry-After: the gateway asks again once the
claim has settled one way or the other).
"""

import itertools
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field

from zope.interface import implementer

from ..errors import Unavailable
from ..ops.redis import LuaScript, ThreadConnections, redis_client
from .interfaces import IDeduplicator

log = logging.getLogger(__name__)

_tokens = itertools.count()
_process_tag = f"{os.getpid()}-{time.monotonic_ns()}"


class ClaimPending(Unavailable):
    """The advertisement is claimed by a request that has not committed yet.

    Neither answer would be true now: "duplicate" (409) if that request
    never stores it (its process was killed), or "stored" if it does. So the
    gateway is told to ask again (503 with Retry-After), by when the claim
    is confirmed or gone. A 503 by nature, so it is one: rendered like any
    (ops/errors.py) on the whole way, and by its as_json by the fast path.
    """

    def __init__(self, retry_after_s: int):
        super().__init__(
            "the reading is being stored by another request; retry shortly",
            retry_after=retry_after_s,
        )
        self.retry_after_s = retry_after_s


class _Held:
    """This process's own claim on a key: settled (an Event) when its
    request confirms or releases it, so a request meeting it waits for that
    instead of polling."""

    __slots__ = ("token", "confirmed", "settled")

    def __init__(self, token: str):
        self.token = token
        self.confirmed = False
        self.settled = threading.Event()

    def settle(self, confirmed: bool) -> None:
        self.confirmed = confirmed
        self.settled.set()


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
    # This process's record of the claim, which requests meeting it wait on.
    held: _Held | None = field(default=None, compare=False, repr=False)


def _new_token() -> str:
    return f"p:{_process_tag}-{next(_tokens)}"


def _retry_after_s(pending_ms: int) -> int:
    # By then a pending claim has expired, if nothing confirmed it.
    return max(1, math.ceil(pending_ms / 1000))


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
            if entry is not None and (entry[1] is value or entry[1] == value):
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
    """Claims kept in this process: the embedded default and Redis's fallback.

    A claim is pending until its request confirms it (committed) or releases
    it; a request meeting a pending claim waits for that on the claim's
    Event, at most ``pending_wait_ms`` (see the module's doc).
    """

    def __init__(
        self,
        window_ms: int,
        clock=time.monotonic,
        pending_wait_ms: int = 250,
        retry_after_s: int = 2,
    ):
        self.window_ms = window_ms
        self.pending_wait_ms = pending_wait_ms
        self.retry_after_s = retry_after_s
        self._claims = ExpiringMap(clock)

    def claim(self, fingerprint: str, wait_until: float | None = None) -> Claim | None:
        if wait_until is None:
            wait_until = time.monotonic() + self.pending_wait_ms / 1000
        held = _Held(_new_token())
        while True:
            if self._claims.add(fingerprint, held, self.window_ms / 1000):
                return Claim(fingerprint, held.token, self, held=held)
            found = self._claims.get(fingerprint)
            if found is None:
                continue  # expired or released meanwhile: claim it
            if found.confirmed:
                return None
            remaining = wait_until - time.monotonic()
            if remaining <= 0 or not found.settled.wait(remaining):
                raise ClaimPending(self.retry_after_s)
            # Settled: confirmed (a duplicate) or released (ours to claim).

    def claimed(self, fingerprint: str) -> bool:
        return self._claims.get(fingerprint) is not None

    def known_here(self, fingerprint: str) -> bool:
        """A committed claim: a pending one is for ``claim`` to wait on."""
        found = self._claims.get(fingerprint)
        return found is not None and found.confirmed

    known_duplicate = known_here

    def confirm(self, claim: Claim) -> None:
        claim.held.settle(True)

    def status(self) -> dict:
        return {"backend": "memory", "claims": len(self._claims)}

    def release(self, claim: Claim) -> None:
        self._claims.discard(claim.key, claim.held)
        claim.held.settle(False)


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
    """Claims shared by every process through Redis, with these refinements.

    * A per-process cache of *committed* claims answers most duplicates with
      no Redis round trip. A claim's value in Redis is ``p:<token>`` while its
      transaction is open and ``c:<expiry ms>`` once committed; ``SET NX GET``
      (and ``known_duplicate``'s GET) return the value found, so any process
      that meets a committed claim caches it until it expires. Another
      process's pending claim is never cached, because it may yet be
      released; this process's own pending claims are known here until
      confirmed or released.
    * A pending claim lives ``pending_ms`` (2 s), not the whole window, and is
      extended to the window when confirmed. If the process holding it dies
      before committing, the claim is gone ``pending_ms`` later.
    * A pending claim is never answered 409: its reading may never be
      stored. The request waits for it at most ``pending_wait_ms``: on this
      process's own claim, an Event its request sets when it settles; on
      another process's, the claim asked for again (``SET NX GET``) at
      growing intervals, which claims it as soon as it is released or
      expired. Still pending: ``ClaimPending`` (503, Retry-After
      ``pending_ms``), by when it has expired or been confirmed. Polling
      rather than Redis pub/sub: a pending claim met is rare (posts of an
      advertisement's first moment, a dead process's claims), and a
      notification would cost every original a PUBLISH and every process a
      subscriber connection, where polling costs nothing outside the wait.
      A committed claim (``c:``) is answered as before, without waiting.
    * Redis trouble must not stop ingest: any Redis error falls back to the
      in-process deduplicator for ``retry_interval_ms`` (a stray duplicate
      stored is cheap, a lost reading is not), counted and logged once per
      outage.
    """

    prefix = "stethoscope:dedup:"
    # First and longest pause between asking again for another process's
    # pending claim: a group commit takes milliseconds.
    poll_first_s = 0.005
    poll_longest_s = 0.05

    def __init__(
        self,
        client,
        window_ms: int,
        fallback: MemoryDeduplicator,
        retry_interval_ms: int = 1000,
        pending_ms: int = 2000,
        pending_wait_ms: int = 250,
        clock=time.monotonic,
        wall_clock=time.time,
    ):
        self.window_ms = window_ms
        self.pending_ms = min(pending_ms, window_ms)
        self.pending_wait_ms = pending_wait_ms
        self.retry_after_s = _retry_after_s(self.pending_ms)
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

    def claim(self, fingerprint: str, wait_until: float | None = None) -> Claim | None:
        key = self.prefix + fingerprint
        if self._committed.get(key) is not None:
            self.cache_hits += 1
            return None
        if wait_until is None:
            wait_until = time.monotonic() + self.pending_wait_ms / 1000
        held = self._pending.get(key)
        if held is not None:
            # This process's own request holds it: wait for it to settle.
            self.cache_hits += 1
            remaining = wait_until - time.monotonic()
            if remaining <= 0 or not held.settled.wait(remaining):
                raise ClaimPending(self.retry_after_s)
            if held.confirmed:
                return None
            # Released: claim it in Redis like any other.
        pause = self.poll_first_s
        while True:
            if self._redis_down():
                return self._fall_back(fingerprint, wait_until)
            token = _new_token()
            asked = self._clock()
            expires_at = self._wall_clock() + self.window_ms / 1000
            try:
                found = self._redis.execute(
                    "SET", key, token, "NX", "PX", self.pending_ms, "GET"
                )
            except Exception as exc:  # any redis or socket error: see the class doc
                self._failed(exc)
                return self._fall_back(fingerprint, wait_until)
            self._recovered()
            # Our own token: the SET took effect before a broken connection
            # was replaced, and was sent again (ThreadConnections).
            if found is None or found == token.encode():
                held = _Held(token)
                # Counted from before the SET: never live here longer than
                # in Redis.
                self._pending.put(
                    key, held, self.pending_ms / 1000 - (self._clock() - asked)
                )
                return Claim(key, token, self, expires_at, held)
            if found.startswith(b"c:"):
                self._cache_committed(key, int(found[2:]) / 1000)
                return None
            # Pending, in another process (or a request of ours that claimed
            # it a moment ago): ask again until it settles or time is up.
            remaining = wait_until - time.monotonic()
            if remaining <= 0:
                raise ClaimPending(self.retry_after_s)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, self.poll_longest_s)

    def known_here(self, fingerprint: str) -> bool:
        """A committed claim cached here (a pending one is ``claim``'s to
        wait for)."""
        if self._committed.get(self.prefix + fingerprint) is not None:
            self.cache_hits += 1
            return True
        return False

    def known_duplicate(self, fingerprint: str) -> bool:
        """Known here, or committed in Redis (a GET: no claim is made).

        A pending claim found is not a duplicate yet: False, so that
        ``claim`` waits for it.
        """
        key = self.prefix + fingerprint
        if self.known_here(fingerprint):
            return True
        if self._redis_down():
            return False
        try:
            found = self._redis.execute("GET", key)
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        if found is None or not found.startswith(b"c:"):
            return False
        self._cache_committed(key, int(found[2:]) / 1000)
        return True

    def _redis_down(self) -> bool:
        return self._down and self._clock() < self._down_until

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
        self._pending.discard(claim.key, claim.held)
        claim.held.settle(True)
        if self._redis_down():
            # Redis failed a moment ago: leave the claim to expire, as a
            # failed confirm would, rather than wait a timeout for each claim
            # of a batch (100 of them, 25 s).
            return
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
        self._pending.discard(claim.key, claim.held)
        # Until Redis answers again we deduplicate in memory, so the retry of
        # this very request is not refused by a claim left in Redis; one
        # left while Redis is down (no timeout waited for each claim of a
        # batch) expires after pending_ms.
        if not self._redis_down():
            try:
                _RELEASE(self._redis, keys=[claim.key], args=[claim.token])
            except Exception as exc:
                self._failed(exc)
        # After the key is gone: a request woken here claims it in Redis.
        claim.held.settle(False)

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

    def _fall_back(self, fingerprint: str, wait_until: float) -> Claim | None:
        with self._state_lock:
            self.fallbacks += 1
        return self.fallback.claim(fingerprint, wait_until)

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
    pending_wait_ms = settings["stethoscope.dedup.pending_wait_ms"]
    memory = MemoryDeduplicator(
        settings["stethoscope.dedup.window_ms"],
        pending_wait_ms=pending_wait_ms,
        retry_after_s=_retry_after_s(settings["stethoscope.dedup.pending_ms"]),
    )
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
        pending_wait_ms=pending_wait_ms,
    )
