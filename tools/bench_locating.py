"""Locating accuracy on SPHERE through the Locator, with stethoscope-evaluate.

    .venv/bin/python tools/bench_locating.py --algorithm logistic   # LORO, ~5 min
    .venv/bin/python tools/bench_locating.py --dead                 # dead beacons

Leave-one-recording-out (default): as tools/bench_sphere.py — each of the
five recordings of ../shared/datasets/sphere/sphere_recordings_1_5.csv is
held out in turn, ``stethoscope-evaluate --train <the other four> --test
<it> --json`` runs in a process of its own, and the folds are pooled
(accuracy over all labelled held-out rows, balanced accuracy as the mean
pooled recall) for raw, live-smoothed and history-smoothed; room changes
per hour are pooled weighted by labelled rows (one a second).

``--dead``: train on sphere-01..04, test on sphere-05 with each station in
turn dead (``--dead-beacon``), once with the default feature set (dead
flags, masked training copies) and once with ``relative`` (naive).
Prints the machine first; docs/benchmarks.md "Locating accuracy (SPHERE)"
has the figures.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_sphere import DATASET, ROOT, merge, pooled, split

KINDS = ("raw", "smoothed", "history")
STATIONS = ("Kitchen_AP", "Lounge_AP", "Upstairs_AP")


def run(train: Path, test: Path, *extra: str) -> dict:
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "stethoscope.scripts.evaluate",
            "--train",
            str(train),
            "--test",
            str(test),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if finished.returncode != 0:
        sys.exit(f"stethoscope-evaluate failed:\n{finished.stderr}")
    return json.loads(finished.stdout)


def figures(fold: dict) -> str:
    return (
        "  ".join(
            f"{kind} {fold[kind]['accuracy']:.3f}/{fold[kind]['balanced_accuracy']:.3f}"
            f" ({fold['room_changes_per_hour'][kind]:.1f}/h)"
            for kind in KINDS
        )
        + f"  truth {fold['room_changes_per_hour']['truth']:.1f}/h"
    )


def leave_one_out(directory: Path, recordings: list[str], algorithm: str) -> None:
    folds = []
    for held_out in recordings:
        train = directory / f"train-without-{held_out}.csv"
        merge(directory, [r for r in recordings if r != held_out], train)
        began = time.perf_counter()
        fold = run(train, directory / f"{held_out}.csv", "--algorithm", algorithm)
        folds.append(fold)
        print(
            f"{held_out}: {fold['algorithm']:<10} {figures(fold)} "
            f"floor {fold['unknown']['floor']:.3f} "
            f"({time.perf_counter() - began:.0f} s)",
            flush=True,
        )
    labelled = sum(fold["n_test_labelled"] for fold in folds)
    print(f"\npooled over {len(folds)} held-out recordings ({labelled:,} rows):")
    for kind in (*KINDS, "truth"):
        rate = (
            sum(f["room_changes_per_hour"][kind] * f["n_test_labelled"] for f in folds)
            / labelled
        )
        if kind == "truth":
            print(f"  {kind:<9} room changes/h {rate:.1f}")
            continue
        accuracy, balanced, recall = pooled(folds, kind)
        print(
            f"  {kind:<9} accuracy {accuracy:.3f}  balanced accuracy {balanced:.3f}"
            f"  room changes/h {rate:.1f}"
        )
        print("    recall: " + ", ".join(f"{r} {v:.2f}" for r, v in recall.items()))


def dead(directory: Path, recordings: list[str], algorithm: str) -> None:
    train = directory / "train-without-last.csv"
    merge(directory, recordings[:-1], train)
    test = directory / f"{recordings[-1]}.csv"
    for feature_set in ("masked", "relative"):
        for station in (None, *STATIONS):
            extra = ["--algorithm", algorithm, "--feature-set", feature_set]
            if station:
                extra += ["--dead-beacon", station]
            fold = run(train, test, *extra)
            print(
                f"{feature_set:<9} dead {station or '-':<12} {figures(fold)}",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="logistic")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--dead", action="store_true", help="the dead-beacon runs")
    args = parser.parse_args()
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(
        f"{platform.node()}: {cpu}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-locating-") as temporary:
        directory = Path(temporary)
        recordings = split(args.dataset, directory)
        if args.dead:
            dead(directory, recordings, args.algorithm)
        else:
            leave_one_out(directory, recordings, args.algorithm)
    print(f"{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
