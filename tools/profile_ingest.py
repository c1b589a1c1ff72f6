"""Where one ingest request spends its time, without the server in the way.

    .venv/bin/python tools/profile_ingest.py                # timings
    .venv/bin/python tools/profile_ingest.py --cprofile 25  # + top functions
    .venv/bin/python tools/profile_ingest.py --prod         # PostgreSQL + Redis

Loads the application from an ini written like bench_ingest.py's (SQLite in
a temporary directory, in-process dedup) and calls the WSGI app directly,
one thread: the duplicate path (the same advertisement again), the original
path (a new payload each time), a late batch of 500 readings (as
bench_ingest.py's batch scenario uploads them) and the hello-world app, each
in microseconds per request (per reading for the batch), wall-clock and
CPU. ``--prod`` loads production.ini's settings instead, with a private
redis-server and bench_ingest.py's PostgreSQL database. cProfile counts CPU
time; its figures are inflated by its own overhead: compare them with each
other, not with the timings.
"""

import argparse
import contextlib
import cProfile
import datetime
import io
import itertools
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest
import hello_app
import traffic
from pyramid.paster import get_app

from stethoscope.migrations import upgrade


def environ(body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/rssi_readings",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "6543",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(app, body: bytes) -> str:
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for _ in app(environ(body), start_response):
        pass
    return statuses[0]


BATCH = 500
# Originals and batches are new on every call, the cProfile runs included.
FRESH = itertools.count()


def bodies(kind: str, n: int) -> list[bytes]:
    if kind == "batch":
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
        return [traffic.batch_body(next(FRESH), BATCH, start) for _ in range(n)]
    if kind == "duplicate":
        body = orjson.dumps(
            {"badge_id": "p-b1", "pi_id": "p-g1", "beacons": {"a": -30, "b": -35}}
        )
        return [body] * n
    return [
        orjson.dumps(
            {"badge_id": f"p-b{i % 50}", "pi_id": "p-g1", "beacons": {f"u{i}": -50}}
        )
        for i in itertools.islice(FRESH, n)
    ]


def measure(app, kind: str, n: int, expect: str | None) -> tuple[float, float]:
    """Wall-clock and CPU microseconds per request (per reading in a batch)."""
    payloads = bodies(kind, n + 1)
    call(app, payloads[0])  # the first duplicate's original; warms up
    start, cpu = time.perf_counter(), time.process_time()
    for body in payloads[1:]:
        status = call(app, body)
        if expect and not status.startswith(expect):
            raise RuntimeError(f"{kind}: got {status}")
    per = n * (BATCH if kind == "batch" else 1)
    return (
        (time.perf_counter() - start) / per * 1e6,
        (time.process_time() - cpu) / per * 1e6,
    )


@contextlib.contextmanager
def production_services(workdir: Path):
    """bench_ingest.py's PostgreSQL database and a private redis-server, in
    the environment production.ini reads them from; removed afterwards."""
    pg = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", *pg, "--if-exists", bench_ingest.PG_DATABASE], check=True)
    subprocess.run(["createdb", *pg, bench_ingest.PG_DATABASE], check=True)
    redis = subprocess.Popen(
        ["redis-server", "--port", str(bench_ingest.REDIS_PORT), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no"],
        stdout=(workdir / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    saved = dict(os.environ)
    os.environ.update(
        DATABASE_URL=bench_ingest.PG_URL,
        REDIS_URL=f"redis://127.0.0.1:{bench_ingest.REDIS_PORT}/0",
        STETHOSCOPE_SECRET="profile-only-secret-of-32-characters!",
    )
    try:
        yield {
            "stethoscope.ingest.require_token": "false",
            "stethoscope.ingest.allow_ips": "127.0.0.1",
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.killpg(redis.pid, signal.SIGTERM)
        redis.wait(10)
        subprocess.run(
            ["dropdb", *pg, "--force", "--if-exists", bench_ingest.PG_DATABASE],
            check=False,
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="requests per path")
    parser.add_argument("--cprofile", type=int, default=0, help="show top N")
    parser.add_argument(
        "--prod", action="store_true", help="production.ini: PostgreSQL + Redis"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="stethoscope-profile-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        overrides = {}
        source = "development.ini"
        if args.prod:
            overrides = stack.enter_context(production_services(workdir))
            source = "production.ini"
        return run(args, workdir, source, overrides)


def run(args, workdir: Path, source: str, overrides: dict) -> int:
    (workdir / "models").mkdir()
    ini = bench_ingest.write_ini(
        bench_ingest.ROOT / source, workdir / "app.ini", 6543, overrides=overrides
    )
    upgrade(str(ini))
    app = get_app(str(ini))
    hello = hello_app.main({})
    paths = [
        ("hello", hello, "duplicate", "200"),
        ("duplicate (409)", app, "duplicate", "409"),
        ("original (201)", app, "original", "201"),
        ("batch (per item)", app, "batch", "200"),
    ]
    for name, wsgi, kind, expect in paths:
        n = max(1, args.n // BATCH) if kind == "batch" else args.n
        wall, cpu = measure(wsgi, kind, n, expect)
        print(
            f"{name:<18} {wall:8.0f} us/request  ({1e6 / wall:,.0f}/s)"
            f"  {cpu:8.0f} us CPU"
        )
    if args.cprofile:
        for name, wsgi, kind, expect in paths[1:]:
            # CPU time, not wall-clock: waiting for PostgreSQL or Redis is not work.
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            measure(
                wsgi,
                kind,
                max(1, args.n // BATCH) if kind == "batch" else args.n,
                expect,
            )
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats(args.cprofile)
            print(f"\n===== {name}: cumulative =====")
            print(out.getvalue().split("\n\n", 1)[-1])
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
            stats.print_stats(args.cprofile)
            print(f"===== {name}: own time =====")
            print(out.getvalue().split("\n\n", 1)[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
