"""Labelled CSV import (and export) benchmark: 1 M rows into a fresh database.

    .venv/bin/python tools/bench_import.py                 # SQLite
    .venv/bin/python tools/bench_import.py --postgres      # and PostgreSQL
    .venv/bin/python tools/bench_import.py --rows 100000   # quicker

Generates a labelled-readings CSV (10 badges, 20 rooms, 10 beacons, one row
a second per badge, interleaved in time order, a room change every 5 min, a
few unlabelled rows, RSSI with one decimal, some beacons not heard) in a
temporary directory, then runs ``python -m stethoscope.scripts.labelled_import``
on it into a fresh migrated database, then imports it again (everything
already there) and exports it. Each step is its own process: wall time,
rows/s and its peak RSS (ru_maxrss of the child) are printed. PostgreSQL:
the ``stethoscope_bench_import`` database on 127.0.0.1 (trust auth as
postgres), created and dropped here. docs/benchmarks.md has the figures.
"""

import argparse
import csv
import datetime
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stethoscope.migrations import upgrade_engine  # noqa: E402

PG_DATABASE = "stethoscope_bench_import"
PG = ["-h", "127.0.0.1", "-U", "postgres"]
INI = """\
[app:main]
use = egg:stethoscope
sqlalchemy.url = {url}
stethoscope.secret = bench-secret-of-at-least-thirty-two-characters
stethoscope.dedup.backend = memory
stethoscope.model_dir = {directory}/models
"""


def generate(path: Path, rows: int, badges=10, rooms=20, beacons=10) -> None:
    rng = random.Random(1)
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    beacon_ids = [f"beacon-{n:02d}" for n in range(beacons)]
    room_of = [rng.randrange(rooms) for _ in range(badges)]
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["timestamp", "badge_id", "room", *beacon_ids])
        for n in range(rows):
            second, badge = divmod(n, badges)
            if second % 300 == 0:
                room_of[badge] = rng.randrange(rooms)
            moment = start + datetime.timedelta(seconds=second)
            room = "" if second % 300 == 299 else f"room-{room_of[badge]:02d}"
            cells = [
                "" if rng.random() < 0.3 else f"{rng.uniform(-100, -40):.1f}"
                for _ in beacon_ids
            ]
            writer.writerow(
                [moment.strftime("%Y-%m-%dT%H:%M:%SZ"), f"badge-{badge:02d}", room]
                + cells
            )


def prepare(url: str) -> None:
    engine = create_engine(url)
    upgrade_engine(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sites (id, name, timezone, created_at) "
                "VALUES ('bench', 'Bench', 'UTC', CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()


def timed(argv: list[str], rows: int, label: str, directory: Path) -> str:
    """Run ``python -m argv``; print its wall time, rows/s and own peak RSS."""
    log = directory / "step.out"
    with log.open("w") as out:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        # wait4 gives this child's own resource usage (RUSAGE_CHILDREN would
        # be the largest of all children so far).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
    output = log.read_text()
    if child.returncode != 0:
        sys.exit(f"{label} failed:\n{output}")
    print(
        f"{label:<24} {seconds:8.1f} s {rows / seconds:10,.0f} rows/s  "
        f"peak RSS {usage.ru_maxrss / 1024:,.0f} MiB",
        flush=True,
    )
    return output


def bench(name: str, url: str, directory: Path, csv_path: Path, rows: int) -> None:
    prepare(url)
    ini = directory / f"{name}.ini"
    ini.write_text(INI.format(url=url.replace("%", "%%"), directory=directory))
    argv = ["stethoscope.scripts.labelled_import", str(ini), str(csv_path)]
    argv += ["--site", "bench", "--create-rooms"]
    first = timed(argv, rows, f"{name}: import", directory)
    for line in first.splitlines():
        if not line.startswith("rooms created"):
            print("    " + line)
    again = timed(argv, rows, f"{name}: import again", directory)
    print("    " + again.splitlines()[1])
    exported = directory / f"{name}-export.csv"
    export = ["stethoscope.scripts.labelled_export", str(ini), str(exported)]
    timed(export, rows, f"{name}: export", directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="stethoscope-bench-import-"))
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    try:
        csv_path = directory / "labelled.csv"
        started = time.monotonic()
        generate(csv_path, args.rows)
        size = csv_path.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} rows ({size:,.0f} MiB) in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
        bench(
            "sqlite",
            f"sqlite:///{directory}/bench.sqlite",
            directory,
            csv_path,
            args.rows,
        )
        if args.postgres:
            subprocess.run(["dropdb", *PG, "--if-exists", PG_DATABASE], check=True)
            subprocess.run(["createdb", *PG, PG_DATABASE], check=True)
            try:
                bench(
                    "postgres",
                    f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}",
                    directory,
                    csv_path,
                    args.rows,
                )
            finally:
                subprocess.run(["dropdb", *PG, "--if-exists", PG_DATABASE], check=False)
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
