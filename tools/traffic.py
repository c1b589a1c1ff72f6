"""Gateway traffic in Python: the model, an open-loop client, a batch uploader.

The model is the one in tools/ingest_mix.lua (keep the two in step): a house
has 4 gateways, 20 badges and 10 beacons; a badge's payload changes every
5 s of wall-clock time (each badge with its own phase) and is advertised
about once a second; every gateway of the house posts every advertisement.
With ``houses = rate / 80`` that is ~95 % duplicates at any rate.

Only 127.0.0.1 is a target; every loop is bounded in count and time.
"""

import asyncio
import datetime
import http.client
import math
import threading
import time
from dataclasses import dataclass, field

import orjson

REQUESTS_PER_HOUSE = 80  # 4 gateways x 20 badges x 1 advertisement/s


def houses_for_rate(rate: float) -> int:
    return max(1, math.ceil(rate / REQUESTS_PER_HOUSE))


def payload(h: int, b: int, g: int, now: float, tag: str = "h") -> dict:
    """Gateway ``g`` of house ``h`` posting what badge ``b`` advertises at ``now``."""
    badge = h * 20 + b
    epoch = math.floor((now + badge % 5) / 5)
    first = (b + epoch) % 10
    beacons = {
        f"{tag}{h}-r{(first + k) % 10}": -40 - ((epoch * 7 + b * 13 + k * 11) % 50)
        for k in range(3)
    }
    return {
        "badge_id": f"{tag}{h}-b{b}",
        "pi_id": f"{tag}{h}-g{g}",
        "badge_strength": -55 - g * 5,
        "beacons": beacons,
    }


def nth_post(i: int, houses: int, now: float, tag: str = "h") -> dict:
    """The i-th post of the round-robin walk over (gateway, badge, house)."""
    return payload((i // 80) % houses, (i // 4) % 20, i % 4, now, tag)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(
        len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    )
    return sorted_values[index]


# -- open loop -----------------------------------------------------------------


@dataclass
class OpenLoopResult:
    rate: float
    duration_s: float
    houses: int
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    # What the errors were: exception class -> count.
    error_kinds: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    # (seconds since the start, latency ms) of each request: when stalls were.
    timeline: list[tuple[float, float]] = field(default_factory=list)
    max_send_lag_ms: float = 0.0
    connections: int = 0

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        slowest = sorted(self.timeline, key=lambda point: -point[1])[:20]
        return {
            "rate": self.rate,
            "houses": self.houses,
            "sent": self.sent,
            "completed": len(lat),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "p50_ms": percentile(lat, 50),
            "p90_ms": percentile(lat, 90),
            "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1] if lat else float("nan"),
            "slowest": [(round(at, 3), round(ms, 1)) for at, ms in sorted(slowest)],
            "max_send_lag_ms": self.max_send_lag_ms,
            "connections": self.connections,
        }


class _Connection:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    async def post(self, host: str, path: str, body: bytes) -> int:
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s"
            % (path.encode(), host.encode(), len(body), body)
        )
        status, _ = await read_response(self.reader)
        return status


async def read_response(reader) -> tuple[int, int]:
    """Read one HTTP/1.1 response off ``reader``: its status and body length
    (the body itself is read and dropped)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed by the server")
    status = int(status_line.split(None, 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status, length

    def close(self):
        self.writer.close()


async def _open_loop(
    port: int, rate: float, duration_s: float, max_connections: int, timeout_s: float
) -> OpenLoopResult:
    """Send at a fixed rate whatever the server does; time from the schedule.

    Latency is measured from when a request was due, not from when it was
    written, so a server that stalls is charged for the requests that queue
    behind the stall (no coordinated omission).
    """
    houses = houses_for_rate(rate)
    result = OpenLoopResult(rate, duration_s, houses)
    idle: list[_Connection] = []
    slots = asyncio.Semaphore(max_connections)
    host = f"127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    total = int(rate * duration_s)
    tasks = set()

    async def one(i: int, due: float):
        body = orjson.dumps(nth_post(i, houses, time.time()))
        async with slots:
            connection = idle.pop() if idle else None
            try:
                if connection is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    connection = _Connection(reader, writer)
                    result.connections += 1
                status = await asyncio.wait_for(
                    connection.post(host, "/rssi_readings", body), timeout_s
                )
            except (
                OSError,
                TimeoutError,
                ValueError,
                asyncio.IncompleteReadError,
            ) as exc:
                result.errors += 1
                kind = f"{type(exc).__name__}: {exc}"[:80]
                result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                if connection is not None:
                    connection.close()
                return
            idle.append(connection)
        result.latencies_ms.append((loop.time() - due) * 1000)
        result.timeline.append((due - start, result.latencies_ms[-1]))
        result.statuses[status] = result.statuses.get(status, 0) + 1

    start = loop.time() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.max_send_lag_ms = max(result.max_send_lag_ms, -delay * 1000)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        result.sent += 1
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 1)
    for connection in idle:
        connection.close()
    return result


def open_loop(
    port: int,
    rate: float,
    duration_s: float,
    max_connections: int = 256,
    timeout_s: float = 5.0,
) -> OpenLoopResult:
    return asyncio.run(_open_loop(port, rate, duration_s, max_connections, timeout_s))


# -- batch upload ----------------------------------------------------------------


@dataclass
class BatchResult:
    batch_size: int
    batches: int = 0
    created: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        return {
            "batch_size": self.batch_size,
            "batches": self.batches,
            "created": self.created,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "failed": self.failed,
            "seconds": self.seconds,
            "readings_per_s": self.created / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
        }


def batch_body(k: int, batch_size: int, start: datetime.datetime) -> bytes:
    """Batch ``k``: what gateway k's house buffered while offline, all originals.

    Each item is one (badge, 5-s update) of house k, observed well in the
    past, so the server takes the late-upload path (checked against stored
    readings). Batches never overlap: they are the distinct updates a
    server stores, the worst case for the database.
    """
    items = []
    for n in range(batch_size):
        b = n % 20
        epoch = n // 20
        at = start + datetime.timedelta(seconds=epoch * 5 + b % 5)
        item = payload(k, b, 0, epoch * 5.0, tag="batch")
        item["observed_at"] = at.isoformat()
        items.append(item)
    return orjson.dumps(items)


def batch_upload(
    port: int,
    duration_s: float,
    batch_size: int = 500,
    concurrency: int = 2,
    max_batches: int = 2000,
) -> BatchResult:
    """Upload distinct batches from ``concurrency`` connections for ``duration_s``."""
    result = BatchResult(batch_size)
    lock = threading.Lock()
    counter = iter(range(max_batches))
    # Two hours back: well past the dedup window, well inside max_age.
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    t0 = time.monotonic()
    deadline = t0 + duration_s

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                body = batch_body(k, batch_size, start)
                sent = time.monotonic()
                connection.request(
                    "POST",
                    "/rssi_readings",
                    body,
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                data = response.read()
                elapsed = time.monotonic() - sent
                with lock:
                    result.batches += 1
                    result.latencies_ms.append(elapsed * 1000)
                    if response.status != 200:
                        result.failed += 1
                        continue
                    counts = orjson.loads(data)
                    result.created += counts["created"]
                    result.duplicate += counts["duplicate"]
                    result.rejected += counts["rejected"]
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration_s + 60)
    result.seconds = time.monotonic() - t0
    return result
