"""Where a locating process's memory goes: RSS after each kind of request.

    .venv/bin/python tools/memory_steps.py [--ini INI] [--tracemalloc]

Not a test: a benchmark, run by hand (docs/benchmarks.md, "Soak"). On the
soak's database (``tools/soak.py --setup-only``), one app in this process
(webtest, no server) answers the soak's kinds of request in turn, four
threads at a time as waitress would; after each step it prints the
process's RSS, what Python's allocator holds (``sys.getallocatedblocks``
is not bytes: tracemalloc is, and is switched on only for the counts), and
the RSS after ``malloc_trim(0)`` gives freed heap back: what is left is
held, the rest was the high-water mark of requests already answered.
"""

import argparse
import ctypes
import json
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_location
from bench_location import Live, finished_days, generated_house
from soak import DB, rss_mib

ROOT = Path(__file__).resolve().parent.parent
LIBC = ctypes.CDLL("libc.so.6")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ini", default=str(ROOT / "var/bench/soak/postgresql/postgresql.ini")
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv)
    meta = json.loads((Path(args.ini).parent / "meta.json").read_text())
    if args.tracemalloc:
        tracemalloc.start()

    def step(name: str) -> None:
        before = rss_mib("self")
        LIBC.malloc_trim(0)
        traced = ""
        if args.tracemalloc:
            traced = f"  python holds {tracemalloc.get_traced_memory()[0] / 2**20:7.1f}"
        print(
            f"{name:<44} RSS {before:7.1f} MiB, after malloc_trim "
            f"{rss_mib('self'):7.1f}{traced}",
            flush=True,
        )

    step("imports (stethoscope, numpy, scikit-learn)")
    from pyramid.paster import get_app
    from webtest import TestApp

    app = TestApp(
        get_app(args.ini, "main"),
        extra_environ={
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {meta['token']}",
            "HTTP_ACCEPT": "application/json",
        },
    )
    step("app made")
    badges = generated_house().badge_ids(meta["badges"])
    # Locations need a live window: the soak's feed of readings.
    bench_location.BADGES = meta["badges"]
    live = Live(DB, limit_s=600)
    yesterday = finished_days(meta)[-1].isoformat()

    def many(paths):
        with ThreadPoolExecutor(args.threads) as pool:
            for response in pool.map(app.get, paths):
                assert response.status_int == 200, response

    many([f"/badges/{badges[0]}/location"])
    step("one location (model loaded)")
    many([f"/badges/{b}/location" for b in badges])
    step(f"location of {len(badges)} badges")
    many(["/sites/generated/occupancy"])
    step("occupancy")
    looked_at = badges[:5]
    many([f"/badges/{b}/location_history?grain=600" for b in looked_at])
    step("today's history of 5 badges")
    many([f"/badges/{b}/stays?date={yesterday}" for b in looked_at])
    step("yesterday's stays of 5 badges (cached)")
    many([f"/badges/{b}/location_history?grain=600" for b in looked_at] * 4)
    step("today's history of 5 badges, 4 times")
    many(["/rssi_readings", "/badges"])
    step("pages")
    live.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
