"""Locating benchmarks: 10 M stored readings, a pinned server, its figures.

    .venv/bin/python tools/bench_location.py                  # both databases
    .venv/bin/python tools/bench_location.py --db sqlite --reuse
    .venv/bin/python tools/bench_location.py --db postgresql --reuse \
        --scenarios location,history --duration 20

Set-up (kept under var/bench/location/ and reused with ``--reuse``): a
database per backend (SQLite file; PostgreSQL database
``stethoscope_bench_location`` on 127.0.0.1:5432) migrated by
initialize_stethoscope_db, the simulator's generated house (40 rooms, 50
beacons, 200 badges, site ``generated``) set up by ``stethoscope-simulate
setup``, ``--readings`` [10,000,000] simulated readings (one per badge every
5 s, about 2.9 days, ending when the fill ran; seed 1) bulk-loaded into
the readings table (tools/bulk_readings.py: the migrations' indexes
dropped, executemany on SQLite or COPY FREEZE on PostgreSQL, the same
indexes built again), a logistic
model fitted on another simulated walk (seed 7) registered and activated,
and a staff user with an API token (``stethoscope-user INI token create``).

Each run then starts the application with pserve pinned to core 1 (the
ingest benchmark's ``Server`` and ini writer; development.ini's
[server:main], its database URL changed) and a hello-world the same way,
and feeds live readings for every badge (the same simulator, one every 5 s,
inserted by this process) so that the location endpoint has a window.
Load comes from core 0; only 127.0.0.1.

Scenarios:

  location   GET /badges/{id}/location at ``--rate`` [200] req/s offered,
             round robin over the 200 badges: open loop, latency from each
             request's due time (no coordinated omission).
  throughput the same requests closed-loop with wrk, alternated with the
             hello-world (GET /, same header) ``--rounds`` times: the median
             of the rounds' ratios, as the ingest benchmark reports.
  history    location_history of a finished badge-day (17,280 readings)
             cold (the first request for it since the server started) and
             cached (asked again); stays of other badges' days the same.
  occupancy  GET /sites/generated/occupancy with every badge heard.
  ingest     the ingest mix (tools/ingest_mix.lua) against the same server
             while the location open loop runs beside it, alternated with
             the hello-world: the ingest ratio under location load.
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest
import bulk_readings
import traffic
from bench_ingest import (
    BIN,
    ROOT,
    TOOLS,
    Server,
    busy_since,
    core_busy,
    machine,
    run,
    wait_quiet,
    write_ini,
)

from stethoscope.ingest.schemas import fingerprint
from stethoscope.simulate.house import generated_house
from stethoscope.simulate.traffic import labelled_readings

VAR = ROOT / "var" / "bench" / "location"
SCENARIOS = ("location", "throughput", "history", "occupancy", "ingest")
DATABASES = ("sqlite", "postgresql")
PG_DATABASE = "stethoscope_bench_location"
PG = ["-h", "127.0.0.1", "-U", "postgres"]
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
SITE = "generated"
BADGES = 200
UPDATE_SECONDS = 5
USER = "bench-location"
PORTS = {"app": 6631, "hello": 6632}
LIVE_BACK_SECONDS = 150


# -- set-up ------------------------------------------------------------------------


def database_url(db: str) -> str:
    return (
        f"sqlite:///{VAR / 'sqlite' / 'stethoscope.sqlite'}"
        if db == "sqlite"
        else PG_URL
    )


def write_app_ini(db: str, workdir: Path) -> Path:
    return write_ini(
        ROOT / "development.ini",
        workdir / f"{db}.ini",
        PORTS["app"],
        overrides={
            "sqlalchemy.url": database_url(db),
            "stethoscope.model_dir": str(VAR / db / "models"),
        },
    )


def cli(name: str, *args, stdin: str | None = None, timeout=600) -> str:
    # DATABASE_URL from the environment would win over the ini's URL.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [str(BIN / name), *map(str, args)],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{name} {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


def meta_path(db: str) -> Path:
    return VAR / db / "meta.json"


def set_up(db: str, readings: int) -> dict:
    """A fresh database of ``db`` with the house, readings, model and token."""
    directory = VAR / db
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    if db == "postgresql":
        run(["dropdb", *PG, "--if-exists", PG_DATABASE])
        run(["createdb", *PG, PG_DATABASE])
    ini = write_app_ini(db, directory)
    started = time.monotonic()
    cli("initialize_stethoscope_db", ini)
    cli("stethoscope-simulate", "setup", ini, "--house", "generated")
    cli(
        "stethoscope-user",
        ini,
        "add",
        USER,
        "--role",
        "staff",
        "--password-stdin",
        stdin="bench-location-password-1\n",
    )
    out = cli("stethoscope-user", ini, "token", "create", USER)
    token = re.search(r"\b(stu_\S+)", out).group(1)
    end = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    seconds = readings / BADGES * UPDATE_SECONDS
    start = end - datetime.timedelta(seconds=seconds)
    filled = fill(db, start, readings)
    fill_seconds = time.monotonic() - started
    version = train_and_activate(db)
    meta = {
        "db": db,
        "token": token,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "readings": filled,
        "fill_seconds": round(fill_seconds, 1),
        "model_version_id": version,
    }
    meta_path(db).write_text(json.dumps(meta, indent=2))
    return meta


def rows_of(records, gateways: list[str]):
    """Readings as (badge, gateway, received, observed, strength, json, fp)."""
    for record in records:
        beacons = record.beacons
        yield (
            record.badge_id,
            gateways[hash(record.badge_id) % len(gateways)],
            record.observed_at,
            record.observed_at,
            -60,
            orjson.dumps(beacons).decode(),
            fingerprint(record.badge_id, beacons),
        )


COLUMNS = (
    "badge_id, gateway_id, received_at, observed_at, badge_strength, beacons, "
    "fingerprint"
)


class Writer:
    """The live readings into the readings table: executemany / COPY."""

    def __init__(self, db: str):
        self.db = db
        if db == "sqlite":
            # Live writes from its own thread what its constructor began.
            self.connection = sqlite3.connect(
                VAR / "sqlite" / "stethoscope.sqlite",
                timeout=30,
                check_same_thread=False,
            )
        else:
            import psycopg

            self.connection = psycopg.connect(
                f"host=127.0.0.1 user=postgres dbname={PG_DATABASE}", autocommit=False
            )

    def write(self, rows: list[tuple]) -> None:
        if self.db == "sqlite":
            self.connection.executemany(
                f"INSERT INTO readings ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        b,
                        g,
                        r.strftime("%Y-%m-%d %H:%M:%S.%f"),
                        o.strftime("%Y-%m-%d %H:%M:%S.%f"),
                        s,
                        j,
                        f,
                    )
                    for b, g, r, o, s, j, f in (
                        (
                            b,
                            g,
                            r.astimezone(datetime.UTC).replace(tzinfo=None),
                            o.astimezone(datetime.UTC).replace(tzinfo=None),
                            s,
                            j,
                            f,
                        )
                        for b, g, r, o, s, j, f in rows
                    )
                ],
            )
            self.connection.commit()
            return
        copy_sql = f"COPY readings ({COLUMNS}) FROM STDIN"
        with self.connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        self.connection.commit()

    def close(self):
        self.connection.close()


def fill(db: str, start: datetime.datetime, readings: int) -> int:
    """The simulated readings bulk-loaded (tools/bulk_readings.py: the
    indexes the migrations made dropped, the rows loaded, the indexes built
    again, then ANALYZE)."""
    house = generated_house()
    gateways = [gateway.id for gateway in house.gateways]
    rows = rows_of(
        labelled_readings(house, badges=BADGES, start=start, readings=readings, seed=1),
        gateways,
    )
    if db == "sqlite":
        return bulk_readings.load_sqlite(
            VAR / "sqlite" / "stethoscope.sqlite",
            (
                (b, g, bulk_readings.sqlite_time(r), bulk_readings.sqlite_time(o), *t)
                for b, g, r, o, *t in rows
            ),
        )
    # bulk_readings VACUUMs after loading, as autovacuum would after a
    # while (the visibility map, so index-only scans skip the heap); the
    # rows are written frozen, so the first read of a cold badge-day no
    # longer writes its pages back for hint bits (it did: 11,000 page
    # writes in one 17,280-row day when the fill used plain COPY).
    return bulk_readings.load_postgresql(
        f"host=127.0.0.1 user=postgres dbname={PG_DATABASE}", rows
    )


def train_and_activate(db: str) -> int:
    """A logistic model (the usual ``auto`` winner) of the generated house,
    fitted on its own simulated walk, registered and activated."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from stethoscope.learning.artifacts import ModelStore
    from stethoscope.learning.services import ModelService
    from stethoscope.learning.trainer import LabelledData, TrainingResult, fit_model

    house = generated_house()
    rooms = [room.id for room in house.rooms]
    records = list(labelled_readings(house, badges=20, seconds=4 * 3600, seed=7))
    badges = np.asarray([r.badge_id for r in records])
    labels = np.asarray([r.room_id for r in records])
    seconds = np.asarray([r.observed_at.timestamp() for r in records])
    # A training run per stay: consecutive readings of a badge in one room.
    runs = np.empty(len(records), dtype=np.int64)
    stays, open_stay = [], {}
    for i, record in enumerate(records):
        k = open_stay.get(record.badge_id)
        if k is None or stays[k][2] != record.room_id:
            stays.append([len(stays) + 1, record.badge_id, record.room_id, 0.0, 0.0])
            stays[-1][3] = seconds[i]
            k = open_stay[record.badge_id] = len(stays) - 1
        stays[k][4] = seconds[i]
        runs[i] = stays[k][0]
    data = LabelledData(
        [r.beacons for r in records],
        labels,
        runs,
        badges,
        seconds,
        [tuple(stay) for stay in stays],
    )
    model = fit_model(data, "logistic", rooms)
    result = TrainingResult(
        model=model,
        algorithm="logistic",
        metrics={"selected_by": "tools/bench_location.py (no cross-validation)"},
        n_readings=len(records),
        run_ids=sorted(set(runs.tolist())),
        data_start=records[0].observed_at,
        data_end=records[-1].observed_at,
    )
    engine = create_engine(database_url(db))
    store = ModelStore(VAR / db / "models")
    with Session(engine) as session, session.begin():
        version = ModelService(session, store).register(
            SITE, result, created_by="bench"
        )
        version_id = version.id
    with Session(engine) as session, session.begin():
        ModelService(session, store).activate(version_id, actor="bench")
    engine.dispose()
    return version_id


def ready(db: str, reuse: bool, readings: int) -> dict:
    """The set-up of ``db``: reused when asked and complete, else made."""
    if reuse and meta_path(db).exists():
        meta = json.loads(meta_path(db).read_text())
        if meta.get("readings", 0) >= readings * 0.999:
            return meta
    print(f"setting up {db} with {readings:,} readings ...", file=sys.stderr)
    meta = set_up(db, readings)
    print(
        f"  {db}: {meta['readings']:,} readings in {meta['fill_seconds']} s",
        file=sys.stderr,
    )
    return meta


# -- during a run -------------------------------------------------------------------


class Live:
    """Every badge's readings of the live window, then one every 5 s each, as
    the simulator walks on: inserted by a thread of this process (core 0)."""

    def __init__(self, db: str, limit_s: float):
        house = generated_house()
        self.gateways = [gateway.id for gateway in house.gateways]
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
            seconds=LIVE_BACK_SECONDS
        )
        self.records = labelled_readings(
            house,
            badges=BADGES,
            start=start,
            seconds=LIVE_BACK_SECONDS + limit_s,
            seed=2,
        )
        self.writer = Writer(db)
        self.pending = None
        self.written = 0
        self.stop_event = threading.Event()
        self.feed()  # the window's backlog before anything is asked
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def feed(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        due = []
        if self.pending is not None:
            if self.pending.observed_at > now:
                return
            due.append(self.pending)
            self.pending = None
        for record in self.records:
            if record.observed_at > now:
                self.pending = record
                break
            due.append(record)
        if due:
            self.writer.write(list(rows_of(due, self.gateways)))
            self.written += len(due)

    def _run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.feed()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        self.writer.close()


class _Get:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> tuple[int, int]:
        self.writer.write(request)
        return await traffic.read_response(self.reader)


def request_bytes(path: str, token: str, port: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    ).encode()


async def _open_loop(port, paths, token, rate, duration_s, timeout_s=5.0):
    """GETs of ``paths`` (round robin) at ``rate``; latency from due time."""
    loop = asyncio.get_running_loop()
    idle, latencies, statuses, errors = [], [], collections.Counter(), 0
    slots = asyncio.Semaphore(256)
    requests = [request_bytes(p, token, port) for p in paths]
    tasks = set()

    async def one(i, due):
        nonlocal errors
        async with slots:
            connection = idle.pop() if idle else None
            try:
                if connection is None:
                    connection = _Get(*await asyncio.open_connection("127.0.0.1", port))
                status, _ = await asyncio.wait_for(
                    connection.get(requests[i % len(requests)]), timeout_s
                )
            except (
                OSError,
                TimeoutError,
                ValueError,
                IndexError,
                asyncio.IncompleteReadError,
            ):
                errors += 1
                return
            idle.append(connection)
        latencies.append((loop.time() - due) * 1000)
        statuses[status] += 1

    start = loop.time() + 0.05
    for i in range(int(rate * duration_s)):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 1)
    for connection in idle:
        connection.writer.close()
    latencies.sort()
    return {
        "rate": rate,
        "sent": int(rate * duration_s),
        "completed": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "p50_ms": round(traffic.percentile(latencies, 50), 2),
        "p90_ms": round(traffic.percentile(latencies, 90), 2),
        "p99_ms": round(traffic.percentile(latencies, 99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
    }


def open_loop(port, paths, token, rate, duration_s) -> dict:
    return asyncio.run(_open_loop(port, paths, token, rate, duration_s))


WRK_SCRIPT = """
local paths = {%s}
local i = 0
local headers = {["Authorization"] = "Bearer %s", ["Accept"] = "application/json"}
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], headers)
end
"""


def wrk(port, paths, token, seconds, connections, workdir: Path) -> dict:
    """Closed loop: wrk -t1 on core 0; req/s, non-2xx and latency."""
    script = workdir / f"get-{port}.lua"
    script.write_text(WRK_SCRIPT % (", ".join(f'"{p}"' for p in paths), token))
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    return {"rps": rps, "non_2xx": int(bad.group(1)) if bad else 0, "latency": lat}


def timed_get(port, path, token) -> tuple[float, int, int]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return (time.perf_counter() - started) * 1000, status, len(body)


def finished_days(meta: dict) -> list[datetime.date]:
    """Local days of the site (Europe/London) wholly inside the filled span."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/London")
    start = datetime.datetime.fromisoformat(meta["start"]).astimezone(zone)
    end = datetime.datetime.fromisoformat(meta["end"]).astimezone(zone)
    day, days = start.date() + datetime.timedelta(days=1), []
    while (
        datetime.datetime.combine(
            day + datetime.timedelta(days=1), datetime.time(), zone
        )
        <= end
    ):
        days.append(day)
        day += datetime.timedelta(days=1)
    return days


def summary_ms(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3]


def measure(db: str, meta: dict, chosen: list[str], args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="stethoscope-bench-location-"))
    out = {"readings": meta["readings"], "load_before": loadavg()}
    token = meta["token"]
    badge_ids = generated_house().badge_ids(BADGES)
    locations = [f"/badges/{b}/location" for b in badge_ids]
    port = PORTS["app"]
    servers = []
    live = None
    os.sched_setaffinity(0, {0})
    try:
        ini = write_app_ini(db, workdir)
        app = Server("app", ini, port, "1", workdir)
        servers.append(app)
        hello = None
        if {"throughput", "ingest"} & set(chosen):
            hello_ini = write_ini(
                ROOT / "development.ini",
                workdir / "hello.ini",
                PORTS["hello"],
                app={"use": "call:hello_app:main"},
            )
            hello = Server(
                "hello",
                hello_ini,
                PORTS["hello"],
                "1",
                workdir,
                {"PYTHONPATH": str(TOOLS)},
                "/",
            )
            servers.append(hello)
        live = Live(db, limit_s=3600)
        # Every badge located once: the server warm, its caches as in use.
        open_loop(port, locations, token, 100, 4)
        if "history" in chosen:
            out["history"] = history(app, token, badge_ids, meta, args)
        if "occupancy" in chosen:
            wait_quiet(args.quiet_wait)
            path = f"/sites/{SITE}/occupancy"
            cpu = app.cpu_seconds()
            timings = [timed_get(port, path, token) for _ in range(20)]
            cpu = (app.cpu_seconds() - cpu) / len(timings)
            out["occupancy"] = summary_ms([t for t, _, _ in timings])
            out["occupancy"]["statuses"] = dict(
                collections.Counter(s for _, s, _ in timings)
            )
            out["occupancy"]["bytes"] = timings[-1][2]
            out["occupancy"]["load"] = loadavg()
            out["occupancy"]["server_cpu_ms"] = round(cpu * 1000, 1)
        if "location" in chosen:
            wait_quiet(args.quiet_wait)
            cpu, cores = app.cpu_seconds(), core_busy()
            result = open_loop(port, locations, token, args.rate, args.duration)
            result["server_cpu"] = round((app.cpu_seconds() - cpu) / args.duration, 2)
            result["cores"] = busy_since(cores)
            result["load"] = loadavg()
            out["location"] = result
        if "throughput" in chosen:
            rounds = []
            for _ in range(args.rounds):
                wait_quiet(args.quiet_wait)
                h = wrk(
                    PORTS["hello"],
                    ["/"],
                    token,
                    args.duration,
                    args.connections,
                    workdir,
                )
                wait_quiet(args.quiet_wait)
                a = wrk(
                    port, locations, token, args.duration, args.connections, workdir
                )
                rounds.append({"hello": h, "location": a, "ratio": a["rps"] / h["rps"]})
            out["throughput"] = {
                "rounds": rounds,
                "ratio": statistics.median(r["ratio"] for r in rounds),
                "load": loadavg(),
            }
        if "ingest" in chosen:
            out["ingest"] = ingest_beside(app, hello, locations, token, args, workdir)
        out["problems"] = app.problems()
        out["live_readings"] = live.written
    finally:
        if live is not None:
            live.stop()
        for server in servers:
            server.stop()
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def history(app, token, badge_ids, meta, args) -> dict:
    """Cold and cached history and stays of finished badge-days: every
    (badge, day) asked first here, the server started afresh."""
    day = finished_days(meta)[-1].isoformat()
    n = args.days
    result = {"day": day}
    for kind, badges in (("history", badge_ids[:n]), ("stays", badge_ids[n : 2 * n])):
        path = (
            "/badges/{}/location_history?date={}"
            if kind == "history"
            else ("/badges/{}/stays?date={}")
        )
        cold, cached, statuses, size = [], [], collections.Counter(), 0
        cold_cpu = cached_cpu = 0.0
        for badge in badges:
            wait_quiet(min(args.quiet_wait, 5))
            cpu = app.cpu_seconds()
            ms, status, size = timed_get(app.port, path.format(badge, day), token)
            cold_cpu += app.cpu_seconds() - cpu
            cold.append(ms)
            statuses[status] += 1
            for _ in range(3):
                cpu = app.cpu_seconds()
                ms, status, _ = timed_get(app.port, path.format(badge, day), token)
                cached_cpu += app.cpu_seconds() - cpu
                cached.append(ms)
                statuses[status] += 1
        result[kind] = {
            "cold": summary_ms(cold),
            "cached": summary_ms(cached),
            # The server's CPU a request (clock ticks of 10 ms, averaged):
            # what the request cost, apart from waiting for a shared core.
            "server_cpu_ms": {
                "cold": round(cold_cpu / len(cold) * 1000, 1),
                "cached": round(cached_cpu / len(cached) * 1000, 1),
            },
            "statuses": dict(statuses),
            "bytes": size,
            "load": loadavg(),
        }
    return result


def ingest_beside(app, hello, locations, token, args, workdir) -> dict:
    """The ingest mix's ratio to the hello-world, alone and with the
    location open loop running beside it on the same server (bench_ingest's
    Load). Both share one pinned core: beside the location load, ingest can
    keep at most the share of the core that location leaves it."""
    load_args = argparse.Namespace(
        duration=args.duration,
        warmup=3,
        houses=60,
        connections=16,
        quiet_wait=args.quiet_wait,
    )
    hello_load = bench_ingest.Load([hello], load_args, "0")
    mix = bench_ingest.Load([app], load_args, "0")
    hello_houses, mix_houses = hello_load.houses(False), mix.houses()
    rounds = []
    for n in range(args.rounds):
        h = hello_load.measure(hello_houses, f"lh{n}")
        alone = mix.measure(mix_houses, f"la{n}")
        beside = {}
        thread = threading.Thread(
            target=lambda out=beside: out.update(
                open_loop(app.port, locations, token, args.rate, args.duration + 3)
            )
        )
        thread.start()
        m = mix.measure(mix_houses, f"lm{n}")
        thread.join()
        rounds.append(
            {
                "hello_rps": h["rps"],
                "mix_alone_rps": alone["rps"],
                "alone_ratio": alone["rps"] / h["rps"],
                "mix_rps": m["rps"],
                "ratio": m["rps"] / h["rps"],
                "location": beside,
            }
        )
    return {
        "rounds": rounds,
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "alone_ratio": statistics.median(r["alone_ratio"] for r in rounds),
        "load": loadavg(),
    }


def report(results: dict) -> None:
    print(f"machine: {json.dumps(results['machine'])}")
    for db, out in results["databases"].items():
        print(
            f"\n== {db}: {out['readings']:,} readings; load before {out['load_before']}"
        )
        if "location" in out:
            r = out["location"]
            print(
                f"location open loop {r['rate']:.0f} req/s: p50 {r['p50_ms']} ms "
                f"p99 {r['p99_ms']} ms max {r['max_ms']} ms statuses {r['statuses']} "
                f"errors {r['errors']} server cpu {r['server_cpu']} load {r['load']} "
                "(targets p50 < 5, p99 < 20 ms)"
            )
        if "throughput" in out:
            t = out["throughput"]
            rounds = ", ".join(
                f"{r['location']['rps']:.0f}/{r['hello']['rps']:.0f}"
                for r in t["rounds"]
            )
            print(
                f"location closed loop: {t['ratio']:.1%} of hello (rounds {rounds}; "
                f"non-2xx {[r['location']['non_2xx'] for r in t['rounds']]}) "
                f"load {t['load']}"
            )
        if "history" in out:
            h = out["history"]
            for kind in ("history", "stays"):
                k = h[kind]
                print(
                    f"{kind} {h['day']}: cold {k['cold']} cached {k['cached']} "
                    f"server cpu ms {k['server_cpu_ms']} "
                    f"statuses {k['statuses']} bytes {k['bytes']} load {k['load']} "
                    "(targets cold < 300, cached < 20 ms)"
                )
        if "occupancy" in out:
            print(f"occupancy: {out['occupancy']} (target < 100 ms)")
        if "ingest" in out:
            i = out["ingest"]
            beside = [
                (r["location"].get("p50_ms"), r["location"].get("p99_ms"))
                for r in i["rounds"]
            ]
            print(
                f"ingest mix alone: {i['alone_ratio']:.1%} of hello "
                f"(rounds {[round(r['alone_ratio'], 3) for r in i['rounds']]}); "
                f"beside location: {i['ratio']:.1%} "
                f"(rounds {[round(r['ratio'], 3) for r in i['rounds']]}) "
                f"location p50/p99 beside it {beside}"
            )
        if out.get("problems"):
            print(f"server problems: {out['problems']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse var/bench/location/<db> when complete",
    )
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=int, default=20, help="s per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--days", type=int, default=6, help="cold badge-days")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--quiet-wait", type=float, default=20)
    args = parser.parse_args(argv)
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if set(dbs) - set(DATABASES):
        parser.error(f"--db: one or both of {DATABASES}")
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(chosen) - set(SCENARIOS):
        parser.error(f"--scenarios: some of {SCENARIOS}")
    metas = {db: ready(db, args.reuse, args.readings) for db in dbs}
    if args.setup_only:
        return 0
    results = {"machine": machine(), "databases": {}}
    for db in dbs:
        results["databases"][db] = measure(db, metas[db], chosen, args)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
