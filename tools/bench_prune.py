"""Retention benchmark: stethoscope-prune's rate on ``--rows`` readings
(1 M; docs/benchmarks.md has 10 M), with an ingest load running through a
real server meanwhile.

    .venv/bin/python tools/bench_prune.py --rows 10000000             # SQLite
    .venv/bin/python tools/bench_prune.py --rows 10000000 --postgres  # PostgreSQL
    .venv/bin/python tools/bench_prune.py --rows 100000 --no-ingest

Fills a fresh migrated database (a file in a temporary directory, or a
private PostgreSQL cluster started here as the tests do) with ``--rows``
readings of 20 badges spread evenly over the last 60 days (bulk-loaded by
tools/bulk_readings.py), and training runs holding 10 % of them. Then,
unless --no-ingest, serves the database with ``pserve`` (development.ini's
settings, its own port) and posts new readings to it one after another
over one keep-alive connection: ``--baseline`` seconds alone, then while
RetentionService.prune deletes everything older than 30 days (about half
the readings) in batches of at most ``--batch-size``. Prints the fill
rate, the prune's readings/s, batches and write transactions, and the
posts' latency (p50, p99, max) before and during the prune.
docs/benchmarks.md, "Retention", has the figures.
"""

import argparse
import configparser
import datetime
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import bulk_readings  # noqa: E402

from stethoscope.config import parse_settings  # noqa: E402
from stethoscope.db import Database, make_engine  # noqa: E402
from stethoscope.labels.models import TrainingRun  # noqa: E402
from stethoscope.migrations import upgrade_engine  # noqa: E402
from stethoscope.registry.models import Room, Site  # noqa: E402
from stethoscope.retention.services import RetentionService  # noqa: E402
from tests.support.services import PostgresServer  # noqa: E402

BADGES = 20
DAYS = 60


def fill(engine, rows: int, now: datetime.datetime) -> float:
    """``rows`` readings over the last DAYS days and runs holding 10 %;
    seconds taken."""
    started = time.monotonic()
    step = datetime.timedelta(days=DAYS) / rows
    first = now - datetime.timedelta(days=DAYS)
    with engine.begin() as connection:
        connection.execute(
            insert(Site), [{"id": "bench", "name": "Bench", "timezone": "UTC"}]
        )
        connection.execute(
            insert(Room), [{"id": "lounge", "site_id": "bench", "name": "Lounge"}]
        )
        # Per badge, one run in ten days' worth of every 100 days: 10 % of
        # each badge's readings, before and after the cut-off alike.
        runs = []
        for badge in range(BADGES):
            for day in range(0, DAYS, 10):
                start = first + datetime.timedelta(days=day, hours=badge)
                runs.append(
                    {
                        "badge_id": f"B{badge}",
                        "room_id": "lounge",
                        "started_at": start,
                        "ended_at": start + datetime.timedelta(days=1),
                        "created_by": "bench",
                        "created_at": now,
                        "source": "import",
                    }
                )
        connection.execute(insert(TrainingRun), runs)
    # The readings bulk-loaded (tools/bulk_readings.py: the indexes the
    # migrations made dropped, the rows loaded, the same indexes built again,
    # then ANALYZE, and on PostgreSQL VACUUM), by a connection of its own.
    engine.dispose()
    if engine.dialect.name == "sqlite":
        stamp = bulk_readings.sqlite_time
        bulk_readings.load_sqlite(
            Path(engine.url.database), _rows(rows, first, step, stamp)
        )
    else:
        url = engine.url.set(drivername="postgresql")
        bulk_readings.load_postgresql(
            url.render_as_string(hide_password=False),
            _rows(rows, first, step, lambda moment: moment),
        )
    return time.monotonic() - started


def _rows(rows: int, first: datetime.datetime, step: datetime.timedelta, stamp):
    for n in range(rows):
        moment = stamp(first + n * step)
        yield (
            f"B{n % BADGES}",
            f"pi-{n % 4}",
            moment,
            moment,
            None,
            f'{{"b1": {-50 - n % 30}, "b2": -70}}',
            f"{n:032x}",
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_ini(directory: Path, url: str, port: int) -> Path:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "development.ini")
    parser["server:main"]["listen"] = f"127.0.0.1:{port}"
    settings = parser["app:main"]
    settings["sqlalchemy.url"] = url
    settings["pyramid.reload_templates"] = "false"
    settings["stethoscope.model_dir"] = str(directory / "models")
    settings["stethoscope.docs_dir"] = str(ROOT / "docs" / "api")
    settings["stethoscope.ingest.require_token"] = "false"
    if parser.has_section("alembic"):
        parser["alembic"]["script_location"] = str(ROOT / "alembic")
    parser["logger_root"]["level"] = "WARN"
    if parser.has_section("logger_stethoscope"):
        parser["logger_stethoscope"]["level"] = "WARN"
    path = directory / "server.ini"
    with path.open("w") as handle:
        parser.write(handle)
    return path


class Poster(threading.Thread):
    """Posts new readings one after another; latencies by phase."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.phase = "baseline"
        self.latencies: dict[str, list[float]] = {"baseline": [], "prune": []}
        self.failures: dict[str, int] = {"baseline": 0, "prune": 0}
        self.stopping = threading.Event()

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        n = 0
        while not self.stopping.is_set():
            n += 1
            # Originals, mostly: the beacons' levels differ from post to post.
            body = json.dumps(
                {
                    "badge_id": f"L{n % 50}",
                    "pi_id": "pi-load",
                    "beacons": {"b1": -30 - n % 60, "b2": -30 - n // 60 % 60},
                }
            )
            phase = self.phase
            started = time.perf_counter()
            try:
                connection.request(
                    "POST",
                    "/rssi_readings",
                    body,
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                answer = response.read()
                ok = response.status in (201, 409)
                if not ok and not self.failures[phase]:
                    print(f"ingest: {response.status} {answer[:200]!r}")
            except OSError:
                ok = False
                connection.close()
            self.latencies[phase].append(time.perf_counter() - started)
            if not ok:
                self.failures[phase] += 1


def summary(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return f"{len(latencies)} posts"
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"{len(latencies):,} posts, p50 {cuts[49] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms"
    )


def wait_for_server(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pserve exited: {process.stderr.read().decode()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("pserve did not answer /health")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--baseline", type=float, default=10.0, metavar="SECONDS")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="bench-prune-"))
    cluster = None
    if args.postgres:
        os.chmod(directory, 0o755)  # the cluster may run as postgres
        cluster = PostgresServer(directory / "pg").start()
        cluster.execute("CREATE DATABASE bench_prune")
        url = cluster.database_url("bench_prune")
    else:
        url = f"sqlite:///{directory / 'bench.sqlite'}"
    server = None
    try:
        engine = create_engine(url)
        upgrade_engine(engine)
        now = datetime.datetime.now(datetime.UTC)
        seconds = fill(engine, args.rows, now)
        print(
            f"filled {args.rows:,} readings in {seconds:,.1f} s "
            f"({args.rows / seconds:,.0f}/s) on {engine.dialect.name}",
            flush=True,
        )
        engine.dispose()

        poster = None
        if not args.no_ingest:
            port = free_port()
            ini = server_ini(directory, url, port)
            server = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "pserve"), str(ini)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            wait_for_server(port, server)
            poster = Poster(port)
            poster.start()
            time.sleep(args.baseline)  # the load alone, to compare with

        # The prune's own engine, with the server's SQLite pragmas.
        settings = parse_settings(
            {"sqlalchemy.url": url, "stethoscope.secret": "x" * 32}, environ={}
        )
        database = Database(make_engine(settings))
        service = RetentionService(database, actor="bench", actor_type="console")
        cutoff = service.cutoff(datetime.timedelta(days=30))
        planned = service.count(cutoff)
        if poster:
            poster.phase = "prune"
        result = service.prune(cutoff, batch_size=args.batch_size)
        if poster:
            poster.stopping.set()
            poster.join()
        database.dispose()
        print(
            f"pruned {result.deleted:,} readings (planned {planned.deleted:,}; "
            f"{result.kept_for_training_runs:,} kept for training runs) in "
            f"{result.batches:,} batches of at most {args.batch_size:,}: "
            f"{result.seconds:,.1f} s, {result.deleted / result.seconds:,.0f} "
            f"readings/s (count beforehand {planned.seconds:.2f} s); write "
            f"transactions {result.writing_seconds / max(result.batches, 1) * 1000:.1f}"
            f" ms on average, {result.longest_write_seconds * 1000:.0f} ms at most"
        )
        if poster:
            for phase in ("baseline", "prune"):
                print(
                    f"ingest {phase:8}: {summary(poster.latencies[phase])}, "
                    f"{poster.failures[phase]} not 201/409"
                )
        print(
            f"python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} cores"
        )
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
