"""Soak: minutes of mixed load on the production layout, and what it did.

    .venv/bin/python tools/soak.py --setup-only          # the database, once
    .venv/bin/python tools/soak.py --reuse --minutes 10

Not a test: a benchmark, run by hand (docs/benchmarks.md, "Soak").

Set-up (kept under var/bench/soak/ and reused with ``--reuse``): the
locating benchmark's (tools/bench_location.py: the generated house, a staff
user's API token, simulated readings straight into the table, a logistic
model registered and activated) on its own PostgreSQL database
``stethoscope_soak``, with ``--badges`` [50] badges from an hour before
yesterday's midnight (UTC) to now, so that yesterday is a whole day.

Each run starts a private redis-server and two application processes from
production.ini (PostgreSQL, Redis dedup; each pinned to its own core, as
tools/bench_ingest.py's ``prod`` does), feeds every badge a reading every
5 s straight into the table (bench_location's ``Live``: locations need a
live window), and offers from one asyncio client, open loop (latency from
each request's due time), round robin over the two processes:

  ingest     POST /rssi_readings, tools/traffic.py's gateway model at
             ``--ingest-rate`` [80] req/s (one house: ~95 % duplicates, 409)
  location   GET /badges/{id}/location [5/s]
  history    GET /badges/{id}/location_history?grain=600 (today) [0.1/s]
  stays      GET /badges/{id}/stays?date=yesterday [0.1/s]
             (both over ``--looked-at`` [5] badges)
  occupancy  GET /sites/generated/occupancy [0.5/s]
  pages      GET /readings, /badges (HTML) and GET /rssi_readings (JSON) [1/s]

It prints per route the requests, statuses and p50/p99/max latency, the
throughput per minute, each process's RSS and what its locating caches
hold (its /metrics) every ``--sample`` [30] s (and whether it grew), the
count of 5xx (must be 0), the load average each minute and the servers'
logged errors. Only 127.0.0.1.
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest
import bench_location
import traffic
from bench_ingest import ROOT, Server, machine, start_redis, write_ini
from bench_location import Live, _Get, finished_days, loadavg

PG_DATABASE = "stethoscope_soak"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
VAR = ROOT / "var" / "bench" / "soak"
PORTS = (6651, 6652)
REDIS_PORT = 6396
DB = "postgresql"

# bench_location's set-up and live feed, pointed at the soak's database and
# directory (its functions read these module names when they run).
bench_location.PG_DATABASE = PG_DATABASE
bench_location.PG_URL = PG_URL
bench_location.VAR = VAR
bench_ingest.REDIS_PORT = REDIS_PORT


def set_up(badges: int) -> dict:
    """bench_location's set-up with ``badges`` badges from an hour before
    yesterday's midnight (UTC) to now."""
    bench_location.BADGES = badges
    now = datetime.datetime.now(datetime.UTC)
    start = datetime.datetime.combine(
        now.date() - datetime.timedelta(days=1), datetime.time(), datetime.UTC
    ) - datetime.timedelta(hours=1)
    readings = int((now - start).total_seconds() / 5 * badges)
    meta = bench_location.set_up(DB, readings)
    meta["badges"] = badges
    bench_location.meta_path(DB).write_text(json.dumps(meta, indent=2))
    return meta


def ready(args) -> dict:
    path = bench_location.meta_path(DB)
    if args.reuse and path.exists():
        meta = json.loads(path.read_text())
        if meta.get("badges") == args.badges:
            return meta
    print(f"setting up {PG_DATABASE} with {args.badges} badges ...", file=sys.stderr)
    return set_up(args.badges)


def start_apps(workdir: Path) -> list[Server]:
    env = {
        "DATABASE_URL": PG_URL,
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "STETHOSCOPE_SECRET": "soak-only-secret-of-at-least-32-characters",
    }
    servers = []
    for i, port in enumerate(PORTS):
        ini = write_ini(
            ROOT / "production.ini",
            workdir / f"soak{i}.ini",
            port,
            overrides={
                "stethoscope.model_dir": str(VAR / DB / "models"),
                # The traffic model posts as hundreds of gateways (as in
                # bench_ingest's prod): ingest is opened to this address.
                "stethoscope.ingest.require_token": "false",
                "stethoscope.ingest.allow_ips": "127.0.0.1",
            },
        )
        servers.append(Server(f"soak{i}", ini, port, str(i), workdir, env))
    return servers


CACHE_METRICS = {
    "stethoscope_locating_cache_entries": "cache",
    "stethoscope_locating_day_cache_bytes": None,
}


def caches(port: int) -> dict:
    """What a process's locating caches hold, from its /metrics: entries
    per cache, and the finished days' MiB."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name in CACHE_METRICS:
            for sample in family.samples:
                if sample.labels:
                    found[sample.labels["cache"]] = int(sample.value)
                else:
                    found["days_mib"] = round(sample.value / 2**20, 1)
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# -- the load ----------------------------------------------------------------------


class _Body:
    """A stream reader that keeps the last body read whole."""

    def __init__(self, reader):
        self.reader = reader
        self.last = b""

    async def readline(self) -> bytes:
        return await self.reader.readline()

    async def readexactly(self, n: int) -> bytes:
        self.last = await self.reader.readexactly(n)
        return self.last


class _Exchange(_Get):
    """bench_location's keep-alive connection, keeping the body of a 5xx
    (what the server said went wrong)."""

    def __init__(self, reader, writer):
        super().__init__(_Body(reader), writer)

    async def get(self, request: bytes) -> tuple[int, bytes]:
        self.reader.last = b""
        status, _ = await super().get(request)
        return status, self.reader.last if status >= 500 else b""


def get(path: str, port: int, token: str, accept="application/json") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: {accept}\r\n\r\n"
    ).encode()


def post(path: str, port: int, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Routes:
    """Each route's next request, round robin over its targets and the ports."""

    def __init__(self, meta: dict, args):
        self.token = meta["token"]
        badges = bench_location.generated_house().badge_ids(meta["badges"])
        day = finished_days(meta)[-1].isoformat()
        # The residents staff look at during the soak.
        looked_at = badges[: args.looked_at]
        self.houses = traffic.houses_for_rate(args.ingest_rate)
        self.paths = {
            "location": [f"/badges/{b}/location" for b in badges],
            # Today's history is never cached: each request predicts the
            # day so far (thousands of readings) again, as a badge page does.
            "history": [f"/badges/{b}/location_history?grain=600" for b in looked_at],
            # Yesterday's stays: the first request per process predicts the
            # whole day (17,280 readings), the rest come from its cache.
            "stays": [f"/badges/{b}/stays?date={day}" for b in looked_at],
            "occupancy": [f"/sites/{bench_location.SITE}/occupancy"],
            "pages": ["/readings", "/badges", "/rssi_readings"],
        }
        self.rates = {
            "ingest": args.ingest_rate,
            "location": args.location_rate,
            "history": args.history_rate,
            "stays": args.history_rate,
            "occupancy": args.occupancy_rate,
            "pages": args.pages_rate,
        }
        self.count = collections.Counter()

    def request(self, route: str) -> tuple[int, bytes]:
        n = self.count[route]
        self.count[route] += 1
        if route == "ingest":
            item = traffic.nth_post(n, self.houses, time.time(), tag="soak")
            # A balancer sends each gateway to one process: gateways 0-1 and 2-3.
            port = PORTS[int(item["pi_id"].rsplit("g", 1)[1]) // 2]
            return port, post("/rssi_readings", port, orjson.dumps(item))
        port = PORTS[n % 2]
        paths = self.paths[route]
        path = paths[(n // 2) % len(paths)]
        accept = "text/html" if route == "pages" and path != "/rssi_readings" else None
        return port, get(path, port, self.token, accept or "application/json")


async def drive(routes: Routes, seconds: float, servers, timeout_s=10.0) -> dict:
    loop = asyncio.get_running_loop()
    idle = {port: [] for port in PORTS}
    slots = asyncio.Semaphore(512)
    latencies = collections.defaultdict(list)
    statuses = collections.defaultdict(collections.Counter)
    per_minute = collections.Counter()
    errors = collections.Counter()
    failures = []
    stale = collections.Counter()
    samples = []
    tasks = set()

    async def exchange(port, request, pooled):
        connection = pooled or _Exchange(
            *await asyncio.open_connection("127.0.0.1", port)
        )
        status, body = await asyncio.wait_for(connection.get(request), timeout_s)
        idle[port].append(connection)
        return status, body

    async def one(route, due):
        port, request = routes.request(route)
        async with slots:
            pooled = idle[port].pop() if idle[port] else None
            try:
                try:
                    status, body = await exchange(port, request, pooled)
                except (IndexError, ConnectionError, asyncio.IncompleteReadError):
                    if pooled is None:
                        raise
                    # waitress closed it after channel_timeout (30 s) idle:
                    # a real client sends the request again on a new one.
                    stale[route] += 1
                    status, body = await exchange(port, request, None)
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                errors[f"{route}: {type(exc).__name__}"] += 1
                return
            except asyncio.IncompleteReadError:
                errors[f"{route}: closed"] += 1
                return
        if body:
            failures.append(
                {"route": route, "s": round(due - start, 1), "body": body[:300]}
            )
        latencies[route].append((loop.time() - due) * 1000)
        statuses[route][status] += 1
        per_minute[int((due - start) // 60)] += 1

    began = time.monotonic()

    def sample():
        samples.append(
            {
                "s": round(time.monotonic() - began),
                "rss_mib": [rss_mib(s.process.pid) for s in servers],
                "caches": [caches(s.port) for s in servers],
                "load": loadavg(),
            }
        )

    async def sampler():
        while True:
            sample()
            await asyncio.sleep(routes.sample)

    start = loop.time() + 0.1
    end = start + seconds
    due = {route: start for route, rate in routes.rates.items() if rate > 0}
    watcher = asyncio.create_task(sampler())
    while True:
        route, moment = min(due.items(), key=lambda item: item[1])
        if moment >= end:
            break
        delay = moment - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(route, moment))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        due[route] = moment + 1 / routes.rates[route]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 1)
    watcher.cancel()
    sample()
    for connections in idle.values():
        for connection in connections:
            connection.writer.close()
    out = {"routes": {}, "per_minute": dict(sorted(per_minute.items()))}
    for route in routes.rates:
        values = sorted(latencies[route])
        out["routes"][route] = {
            "offered_rate": routes.rates[route],
            "completed": len(values),
            "statuses": {str(k): v for k, v in sorted(statuses[route].items())},
            "p50_ms": round(traffic.percentile(values, 50), 1),
            "p99_ms": round(traffic.percentile(values, 99), 1),
            "max_ms": round(values[-1], 1) if values else None,
        }
    out["errors"] = dict(errors)
    out["stale_connections"] = dict(stale)
    out["failures"] = [
        {**f, "body": f["body"].decode("utf-8", "replace")} for f in failures
    ]
    out["samples"] = samples
    out["server_5xx"] = sum(
        n for s in statuses.values() for code, n in s.items() if code >= 500
    )
    return out


def report(result: dict) -> None:
    print(f"machine: {json.dumps(result['machine'])}")
    print(
        f"{result['minutes']} min, started {result['started']}, load before "
        f"{result['load_before']}, {result['live_readings']:,} live readings fed"
    )
    total = sum(r["completed"] for r in result["routes"].values())
    print(f"throughput: {total / result['seconds']:,.1f} req/s overall")
    print(
        f"{'route':<10} {'offered/s':>9} {'done':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8}  statuses"
    )
    for name, r in result["routes"].items():
        print(
            f"{name:<10} {r['offered_rate']:>9} {r['completed']:>8,} {r['p50_ms']:>8} "
            f"{r['p99_ms']:>8} {r['max_ms']!s:>8}  {r['statuses']}"
        )
    print(
        f"5xx: {result['server_5xx']}; client errors: {result['errors']}; "
        f"sent again after an idle connection was closed: "
        f"{result['stale_connections']}"
    )
    for failure in result["failures"][:10]:
        print(f"  {failure}")
    print(f"per minute: {list(result['per_minute'].values())}")
    first, last = result["samples"][0], result["samples"][-1]
    print("RSS MiB over time (s: proc0, proc1; load):")
    for sample in result["samples"]:
        print(f"  {sample['s']:>5}: {sample['rss_mib']}  {sample['load']}")
        print(f"         caches: {sample['caches']}")
    print(
        f"RSS first -> last: {first['rss_mib']} -> {last['rss_mib']}; "
        f"after the first minute: "
        f"{next(s for s in result['samples'] if s['s'] >= 60)['rss_mib']} -> "
        f"{last['rss_mib']}"
    )
    print(f"server problems: {result['problems']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--badges", type=int, default=50)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--setup-only", action="store_true")
    # Rates a shared 2-core machine (load average ~10) answers without a
    # queue: the soak looks for leaks and errors over time, not a ceiling
    # (tools/bench_ingest.py and bench_location.py measure those).
    parser.add_argument("--ingest-rate", type=float, default=80)
    parser.add_argument("--location-rate", type=float, default=5)
    parser.add_argument("--history-rate", type=float, default=0.1)
    parser.add_argument("--occupancy-rate", type=float, default=0.5)
    parser.add_argument("--pages-rate", type=float, default=1)
    parser.add_argument("--looked-at", type=int, default=5, help="history badges")
    parser.add_argument("--sample", type=float, default=30, help="s between RSS")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args(argv)
    meta = ready(args)
    if args.setup_only:
        return 0
    bench_location.BADGES = meta["badges"]
    workdir = Path(tempfile.mkdtemp(prefix="stethoscope-soak-"))
    redis = start_redis(workdir)
    servers, live = [], None
    result = {
        "machine": machine(),
        "minutes": args.minutes,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_before": loadavg(),
    }
    try:
        servers = start_apps(workdir)
        live = Live(DB, limit_s=args.minutes * 60 + 120)
        routes = Routes(meta, args)
        routes.sample = args.sample
        seconds = args.minutes * 60
        result.update(asyncio.run(drive(routes, seconds, servers)))
        result["seconds"] = seconds
        result["live_readings"] = live.written
        result["problems"] = [p for s in servers for p in s.problems()]
    finally:
        if live is not None:
            live.stop()
        for server in servers:
            server.stop()
        os.killpg(redis.pid, signal.SIGTERM)
        redis.wait(10)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0 if result["server_5xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
