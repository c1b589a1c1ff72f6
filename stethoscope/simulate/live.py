"""Live traffic: every gateway posts every advertisement it hears, in real
time, to a running server's ``POST /rssi_readings``.

One thread per gateway, each with one keep-alive HTTP connection, posts
what its gateway heard in order, as a gateway in the field would: 201 and
409 are done; 429 and 5xx are retried a little later; any other 4xx is
dropped. While the server cannot be reached a gateway waits, backing off,
and drops what grew too old to mean anything (no ``observed_at`` is sent,
so a late post would be stored as heard late). The pace is the badges'
own (one advertisement a second each), or ``speed`` times faster.

While it runs, a gateway or a beacon can be silenced and brought back
(``follow_commands``: ``silence ID``, ``restore ID``), as when one loses
power or network: what staff and alerts see of an outage can be watched
without unplugging anything.
"""

import contextlib
import heapq
import http.client
import itertools
import json
import queue
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from .house import House
from .radio import RadioModel
from .traffic import Simulation, time_ordered

# Seconds: a post that takes longer has failed (the server is local or near).
TIMEOUT = 5.0
# An advertisement not posted this long after it was sent is dropped.
MAX_AGE = 10.0
RETRY_ATTEMPTS = 5
RETRY_DELAY = 1.0
RETRY_AFTER_MAX = 5.0
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 5.0
SUMMARY_EVERY = 30.0
# After the last advertisement of a --duration run, how long the gateways
# may take to post what they still hold.
DRAIN_TIMEOUT = 30.0
# The main thread notices a stop request this quickly.
_SLICE = 0.1
# The commands follow_commands takes, and what each says once done.
COMMANDS = {"silence": "silenced", "restore": "restored"}


# What each gateway outcome counted after the posts is called in the
# operator's line, in its order.
OUTCOMES = {
    "created": "stored (201)",
    "duplicates": "duplicates (409)",
    "retried": "retried",
    "rejected": "rejected",
    "unreachable": "unreachable",
    "dropped": "dropped",
}


class Counts:
    """What the gateways did, so far: posts, and each of OUTCOMES; ``add``
    may be called from any thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(["posts", *OUTCOMES], 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def line(self) -> str:
        """One line for the operator."""
        counts = self.snapshot()
        outcomes = ", ".join(
            f"{counts[name]:,} {shown}" for name, shown in OUTCOMES.items()
        )
        return f"{counts['posts']:,} posts: {outcomes}"


@dataclass(order=True)
class _Post:
    due: float
    sequence: int
    body: bytes = field(compare=False)
    sent: float = field(compare=False)
    attempts: int = field(default=0, compare=False)


class _Reachability:
    """Says once that the server cannot be reached, and once that it can."""

    def __init__(self, url: str, out: TextIO):
        self.url = url
        self.out = out
        self.down = False
        self._lock = threading.Lock()

    def failed(self, error: Exception) -> None:
        with self._lock:
            if not self.down:
                self.down = True
                reason = getattr(error, "strerror", None) or error
                print(
                    f"simulate: waiting for {self.url} ({reason}); retrying quietly",
                    file=self.out,
                    flush=True,
                )

    def answered(self) -> None:
        if not self.down:
            return
        with self._lock:
            if self.down:
                self.down = False
                print(f"simulate: {self.url} answers", file=self.out, flush=True)


class GatewayPoster(threading.Thread):
    """Posts one gateway's advertisements, in order, over one connection."""

    def __init__(self, gateway_id: str, runner: "LiveRunner", token: str | None):
        super().__init__(name=f"gateway-{gateway_id}", daemon=True)
        self.gateway_id = gateway_id
        self.runner = runner
        self.inbox: queue.Queue[_Post] = queue.Queue()
        self.later: list[_Post] = []
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._connection: http.client.HTTPConnection | None = None
        self._rejections_told: set[int] = set()

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self._close()

    def _next(self) -> _Post | None:
        runner = self.runner
        while not runner.stopping.is_set():
            now = time.monotonic()
            if self.later and self.later[0].due <= now:
                return heapq.heappop(self.later)
            wait = min(self.later[0].due - now, 0.2) if self.later else 0.2
            try:
                return self.inbox.get(timeout=wait)
            except queue.Empty:
                if runner.finishing.is_set() and not self.later:
                    return None
        return None

    def _loop(self) -> None:
        runner, counts = self.runner, self.runner.counts
        backoff = BACKOFF_FIRST
        while (post := self._next()) is not None:
            while not runner.stopping.is_set():
                if time.monotonic() - post.sent > runner.max_age:
                    counts.add("dropped")
                    break
                status, retry_after, message = self._post(post.body)
                if status is None:
                    counts.add("unreachable")
                    # Wait, then try the same post again: the server may be
                    # starting (make run starts us first) or restarting.
                    runner.stopping.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                backoff = BACKOFF_FIRST
                runner.reachability.answered()
                counts.add("posts")
                self._handle(post, status, retry_after, message)
                break

    def _handle(self, post: _Post, status: int, retry_after, message: str) -> None:
        counts = self.runner.counts
        if status == 201:
            counts.add("created")
        elif status == 409:
            counts.add("duplicates")
        elif status == 429 or status >= 500:
            if post.attempts + 1 >= RETRY_ATTEMPTS:
                counts.add("dropped")
                return
            counts.add("retried")
            delay = RETRY_DELAY * 2**post.attempts
            if retry_after is not None:
                delay = retry_after
            post.attempts += 1
            post.due = time.monotonic() + min(delay, RETRY_AFTER_MAX)
            heapq.heappush(self.later, post)
        else:
            counts.add("rejected")
            if status not in self._rejections_told:
                # Once per status: the next ones say the same.
                self._rejections_told.add(status)
                print(
                    f"simulate: gateway {self.gateway_id}: {status} {message}"
                    " (dropped; later ones with this status are counted only)",
                    file=self.runner.out,
                    flush=True,
                )

    def _connect(self) -> http.client.HTTPConnection:
        runner = self.runner
        kind = (
            http.client.HTTPSConnection
            if runner.scheme == "https"
            else http.client.HTTPConnection
        )
        return kind(runner.host, runner.port, timeout=runner.timeout)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, body: bytes) -> tuple[int | None, float | None, str]:
        """(status, Retry-After seconds, message); status None: no answer."""
        for attempt in range(2):
            reused = self._connection is not None
            if not reused:
                self._connection = self._connect()
            try:
                self._connection.request(
                    "POST", self.runner.path, body=body, headers=self.headers
                )
                response = self._connection.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                # A kept-alive connection the server closed while idle fails
                # at once; a fresh one tells whether the server is there.
                if reused and attempt == 0:
                    continue
                self.runner.reachability.failed(exc)
                return None, None, ""
            if response.will_close:
                self._close()
            return response.status, _retry_after(response), _message(text)
        return None, None, ""


def _retry_after(response) -> float | None:
    value = response.getheader("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")


class LiveRunner:
    """Runs the simulation in real time (times ``speed``) and posts it.

    ``tokens`` maps gateway ids to bearer tokens; the key None gives the
    token of every other gateway. ``duration`` is in simulated seconds
    (None: until ``stop()``). ``run()`` returns the counts when done.
    """

    def __init__(
        self,
        house: House,
        url: str,
        *,
        badges: int | None = None,
        seed: int = 0,
        speed: float = 1.0,
        duration: float | None = None,
        tokens: dict[str | None, str] | None = None,
        radio: RadioModel | None = None,
        summary_every: float = SUMMARY_EVERY,
        timeout: float = TIMEOUT,
        max_age: float = MAX_AGE,
        out: TextIO | None = None,
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path.rstrip("/") + "/rssi_readings"
        self.url = url
        self.simulation = Simulation(house, badges=badges, seed=seed, radio=radio)
        self.speed = speed
        self.duration = duration
        self.summary_every = summary_every
        self.timeout = timeout
        self.max_age = max_age
        self.out = out or sys.stdout
        self.counts = Counts()
        self._stop_requested = False
        self.stopping = threading.Event()
        self.finishing = threading.Event()
        self.reachability = _Reachability(url, self.out)
        tokens = tokens or {}
        self.posters = {
            gateway_id: GatewayPoster(
                gateway_id, self, tokens.get(gateway_id, tokens.get(None))
            )
            for gateway_id in self.simulation.gateway_ids
        }

    def stop(self) -> None:
        """Stop soon, from any thread or a signal handler.

        Only a flag is set here: a signal handler runs between two bytecodes
        of the main thread, which may be holding the very lock that setting
        an Event takes. The main thread passes the flag on within
        ``_SLICE`` seconds.
        """
        self._stop_requested = True

    def _sleep_until(self, deadline: float) -> bool:
        """Wait until ``deadline`` (monotonic); False when told to stop."""
        while not self._stop_requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, _SLICE))
        self.stopping.set()
        return False

    def _join(self, deadline: float) -> None:
        for poster in self.posters.values():
            while poster.is_alive() and time.monotonic() < deadline:
                if self._stop_requested:
                    self.stopping.set()
                poster.join(_SLICE)

    def run(self) -> Counts:
        """Post until ``duration`` is over (and what is left is posted) or
        ``stop()``; prints a summary every ``summary_every`` seconds."""
        for poster in self.posters.values():
            poster.start()
        started = time.monotonic()
        next_summary = started + self.summary_every
        sequence = itertools.count()
        try:
            for offset, advert in time_ordered(self.simulation, self.duration):
                due = started + offset / self.speed
                now = time.monotonic()
                if now >= next_summary:
                    self._summary()
                    next_summary = now + self.summary_every
                if not self._sleep_until(due):
                    break
                sent = time.monotonic()
                for gateway_id, strength in advert.heard_by.items():
                    body = json.dumps(
                        {
                            "badge_id": advert.badge_id,
                            "pi_id": gateway_id,
                            "beacons": advert.beacons,
                            "badge_strength": strength,
                        },
                        separators=(",", ":"),
                    ).encode()
                    self.posters[gateway_id].inbox.put(
                        _Post(sent, next(sequence), body, sent)
                    )
        finally:
            self.finishing.set()
            self._join(time.monotonic() + DRAIN_TIMEOUT)
            self.stopping.set()
            # A post under way ends within its timeout.
            self._join(time.monotonic() + self.timeout + 1)
        return self.counts

    def _summary(self) -> None:
        print(f"simulate: {self.counts.line()}", file=self.out, flush=True)

    def follow_commands(self, lines: Iterable[str]) -> threading.Thread:
        """Carry out ``lines`` (e.g. standard input), as they come, from a
        thread of its own (returned, started): ``silence ID`` silences the
        gateway or beacon ``ID`` of the house, ``restore ID`` brings it
        back, from the badges' next updates on (what is already computed,
        up to about 15 simulated seconds ahead, goes out as it was). Each
        is answered with one line on ``out`` (e.g. "simulate: gateway
        pi-hall silenced"), a line that is not a command too."""
        thread = threading.Thread(
            target=self._follow, args=(lines,), name="commands", daemon=True
        )
        thread.start()
        return thread

    def _follow(self, lines: Iterable[str]) -> None:
        for line in lines:
            words = line.split()
            if not words:
                continue
            if len(words) != 2 or words[0] not in COMMANDS:
                answer = f"not a command: {line.strip()!r} (silence ID, restore ID)"
            else:
                command, device_id = words
                try:
                    kind = self.simulation.set_silent(device_id, command == "silence")
                except ValueError as exc:
                    answer = str(exc)
                else:
                    answer = f"{kind} {device_id} {COMMANDS[command]}"
            print(f"simulate: {answer}", file=self.out, flush=True)


@contextlib.contextmanager
def stopped_by_signals(runner: LiveRunner):
    """SIGINT and SIGTERM stop ``runner`` cleanly (main thread only; the
    previous handlers come back after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        number: signal.signal(number, lambda *_: runner.stop())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
