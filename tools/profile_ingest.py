"""Where one ingest request spends its time, without the server in the way.

    .venv/bin/python tools/profile_ingest.py                # timings
    .venv/bin/python tools/profile_ingest.py --cprofile 25  # + top functions

Loads the application from an ini written like bench_ingest.py's (SQLite in
a temporary directory, in-process dedup) and calls the WSGI app directly,
one thread: the duplicate path (the same advertisement again), the original
path (a new payload each time) and the hello-world app, each in
microseconds per request. cProfile's figures are inflated by its own
overhead; compare them with each other, not with the timings.
"""

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest
import hello_app
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


def bodies(kind: str, n: int) -> list[bytes]:
    if kind == "duplicate":
        body = orjson.dumps(
            {"badge_id": "p-b1", "pi_id": "p-g1", "beacons": {"a": -30, "b": -35}}
        )
        return [body] * n
    return [
        orjson.dumps(
            {"badge_id": f"p-b{i % 50}", "pi_id": "p-g1", "beacons": {f"u{i}": -50}}
        )
        for i in range(n)
    ]


def measure(app, kind: str, n: int, expect: str | None) -> float:
    payloads = bodies(kind, n + 1)
    call(app, payloads[0])  # the first duplicate's original; warms up
    start = time.perf_counter()
    for body in payloads[1:]:
        status = call(app, body)
        if expect and not status.startswith(expect):
            raise RuntimeError(f"{kind}: got {status}")
    return (time.perf_counter() - start) / n * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="requests per path")
    parser.add_argument("--cprofile", type=int, default=0, help="show top N")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="stethoscope-profile-"))
    try:
        (workdir / "models").mkdir()
        ini = bench_ingest.write_ini(
            bench_ingest.ROOT / "development.ini", workdir / "app.ini", 6543
        )
        upgrade(str(ini))
        app = get_app(str(ini))
        hello = hello_app.main({})
        paths = [
            ("hello", hello, "duplicate", "200"),
            ("duplicate (409)", app, "duplicate", "409"),
            ("original (201)", app, "original", "201"),
        ]
        for name, wsgi, kind, expect in paths:
            micros = measure(wsgi, kind, args.n, expect)
            print(f"{name:<18} {micros:8.0f} us/request  ({1e6 / micros:,.0f}/s)")
        if args.cprofile:
            for name, wsgi, kind, expect in paths[1:]:
                profiler = cProfile.Profile()
                profiler.enable()
                measure(wsgi, kind, args.n, expect)
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
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
