"""Training at scale: 1 M labelled readings, 50 beacons, 40 rooms, one site.

    .venv/bin/python tools/bench_train.py                   # 1,000,000 readings
    .venv/bin/python tools/bench_train.py --readings 100000 --algorithm logistic

Steps, each a process of its own (wall time and that process's peak RSS):
1. ``stethoscope-simulate csv`` writes the labelled readings of the
   generated house (40 rooms, 50 beacons, 200 badges moving room to room);
2. ``stethoscope-simulate setup`` creates that house in a fresh SQLite
   database, and ``stethoscope-import`` loads the file (runs = stays);
3. ``stethoscope-train INI --algorithm A --json`` — what the target is about:
   reading the runs back, cross-validating the candidates grouped by run,
   refitting the winner, writing the artifact and its row.
docs/benchmarks.md has the figures.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INI = """\
[app:main]
use = egg:stethoscope
sqlalchemy.url = sqlite:///{directory}/bench.sqlite
stethoscope.secret = bench-secret-of-at-least-thirty-two-characters
stethoscope.dedup.backend = memory
stethoscope.model_dir = {directory}/models
"""
HOUSE = ["--house", "generated", "--rooms", "40", "--beacons", "50"]


def timed(label: str, module: str, *args: str) -> str:
    """Run ``python -m module args``; print wall time and its own peak RSS."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        text=True,
    )
    output = child.stdout.read()
    # wait4: this child's own peak RSS, not the largest child's so far.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label} failed:\n{output}")
    print(
        f"{label:<28} {seconds:8.1f} s   peak RSS {usage.ru_maxrss / 1024:,.0f} MiB",
        flush=True,
    )
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--algorithm", default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.readings:,} readings, "
        f"algorithm {args.algorithm}",
        flush=True,
    )
    directory = Path(tempfile.mkdtemp(prefix="stethoscope-bench-train-"))
    try:
        ini = directory / "bench.ini"
        ini.write_text(INI.format(directory=directory))
        csv_path = directory / "labelled.csv"
        simulate = "stethoscope.scripts.simulate"
        timed(
            "simulate csv",
            simulate,
            "csv",
            str(csv_path),
            *HOUSE,
            "--readings",
            str(args.readings),
        )
        timed("initialise database", "stethoscope.scripts.initialize_db", str(ini))
        timed("simulate setup", simulate, "setup", str(ini), *HOUSE)
        timed(
            "import",
            "stethoscope.scripts.labelled_import",
            str(ini),
            str(csv_path),
            "--site",
            "generated",
        )
        output = timed(
            "train",
            "stethoscope.scripts.train",
            str(ini),
            "--algorithm",
            args.algorithm,
            "--json",
        )
        outcome = json.loads(output[output.index("{") :])
        metrics = outcome["metrics"]
        print(
            f"model: {outcome['algorithm']} from {outcome['n_readings']:,} readings "
            f"in {outcome['n_runs']:,} runs; CV on {metrics['cv']['readings']:,} "
            f"({metrics['cv']['scheme']}, {metrics['cv']['folds']} folds), "
            f"fit on {metrics['fit_readings']:,}"
        )
        print(
            f"train: reading the runs back {outcome['load_seconds']:.1f} s, "
            f"cross-validation + refit {metrics['training_seconds']:.1f} s "
            f"(refit {metrics['fit_seconds']:.1f} s)"
        )
        print(
            f"CV: accuracy {metrics['accuracy']:.3f}, balanced "
            f"{metrics['balanced_accuracy']:.3f}; smoothed "
            f"{metrics['smoothed']['accuracy']:.3f} / "
            f"{metrics['smoothed']['balanced_accuracy']:.3f}"
        )
        for name, figures in metrics["candidates"].items():
            print(
                f"  {name:<12} balanced log loss {figures['balanced_log_loss']:.3f}"
                f"  {figures['seconds']:7.1f} s"
            )
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
