"""Locating accuracy on SPHERE through the Locator, with stethoscope-evaluate.

    .venv/bin/python tools/bench_locating.py                   # LORO, in-process
    .venv/bin/python tools/bench_locating.py --via-cli         # LORO, with the CV
    .venv/bin/python tools/bench_locating.py --dead            # dead beacons

Leave-one-recording-out in this process (default; ``leave_one_out_here``),
or with ``--via-cli`` as tools/bench_sphere.py — each of the
five recordings of ../shared/datasets/sphere/sphere_recordings_1_5.csv is
held out in turn, ``stethoscope-evaluate --train <the other four> --test
<it> --json`` runs in a process of its own, and the folds are pooled
(accuracy over all labelled held-out rows, balanced accuracy as the mean
pooled recall) for raw, live-smoothed and history-smoothed; room changes
per hour are pooled weighted by labelled rows (one a second).

``--dead``: train on sphere-01..04, test on sphere-05 with each station in
turn dead (taken out of the test and given to the Locator as dead, as
``stethoscope-evaluate --dead-beacon`` does), once with the default feature
set (dead flags, masked training copies) and once with ``relative``
(naive), raw / live / history accuracy and balanced accuracy.
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

import numpy as np
from bench_sphere import DATASET, ROOT, merge, pooled, split

sys.path.insert(0, str(ROOT))
from stethoscope.labels.csvio import read_rows
from stethoscope.learning.data import from_rows
from stethoscope.learning.evaluation import changes_per_hour, headline
from stethoscope.learning.trainer import fit_model
from stethoscope.locating.locator import Locator

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


def dead(dataset: Path, algorithm: str) -> None:
    """In this process: the model ``stethoscope-evaluate`` would refit (the
    trainer's ``fit_model``, same seed) without its cross-validation, which
    selects nothing when the algorithm is given."""
    with open(dataset, newline="") as handle:
        rows = list(read_rows(handle))
    held_out = max(row.badge_id for row in rows)
    train, _ = from_rows([row for row in rows if row.badge_id != held_out])
    _, test = from_rows([row for row in rows if row.badge_id == held_out])
    rooms = sorted(set(train.rooms.tolist()))
    scored = np.asarray([room is not None for room in test.rooms])
    truth = np.asarray(test.rooms, dtype=object)[scored]
    for feature_set in ("masked", "relative"):
        model = fit_model(train, algorithm, rooms, feature_set=feature_set)
        for station in (None, *STATIONS):
            gone = {station} if station else set()
            readings = [
                (float(moment), {b: r for b, r in heard.items() if b not in gone})
                for moment, heard in zip(test.seconds, test.readings, strict=True)
            ]
            locator = Locator(model, {}, None, gone)
            line = []
            for kind, history in (
                ("raw", locator.history(readings, "raw")),
                ("smoothed", locator.live_history(readings)),
                ("history", locator.history(readings, "smoothed")),
            ):
                predicted = np.asarray(rooms, dtype=object)[list(history.room_index)]
                figures = headline(truth, predicted[scored])
                line.append(
                    f"{kind} {figures['accuracy']:.3f}/"
                    f"{figures['balanced_accuracy']:.3f}"
                )
            print(
                f"{feature_set:<9} dead {station or '-':<12} " + "  ".join(line),
                flush=True,
            )


def leave_one_out_here(dataset: Path, algorithm: str, feature_set: str) -> None:
    """Leave-one-recording-out in this process: per fold the model
    ``stethoscope-evaluate --algorithm ALGORITHM`` refits (``fit_model``,
    same data and seed) without the trainer's cross-validation, which
    selects nothing when the algorithm is given: the same test figures in
    a fraction of the time. Pooled over all held-out labelled rows."""
    with open(dataset, newline="") as handle:
        rows = list(read_rows(handle))
    recordings = sorted({row.badge_id for row in rows})
    truth, badges, seconds = [], [], []
    predicted = {kind: [] for kind in KINDS}
    for held_out in recordings:
        train, _ = from_rows([row for row in rows if row.badge_id != held_out])
        _, test = from_rows([row for row in rows if row.badge_id == held_out])
        rooms = np.asarray(sorted(set(train.rooms.tolist())), dtype=object)
        began = time.perf_counter()
        model = fit_model(train, algorithm, list(rooms), feature_set=feature_set)
        fitted = time.perf_counter() - began
        locator = Locator(model, {})
        readings = list(zip(test.seconds.tolist(), test.readings, strict=True))
        scored = np.asarray([room is not None for room in test.rooms])
        histories = {
            "raw": locator.history(readings, "raw"),
            "smoothed": locator.live_history(readings),
            "history": locator.history(readings, "smoothed"),
        }
        fold_truth = np.asarray(test.rooms, dtype=object)[scored]
        line = []
        for kind, history in histories.items():
            fold = rooms[list(history.room_index)][scored]
            predicted[kind].append(fold)
            line.append(f"{kind} {(fold == fold_truth).mean():.3f}")
        truth.append(fold_truth)
        badges.append(test.badges[scored])
        seconds.append(test.seconds[scored])
        print(
            f"{held_out}: {'  '.join(line)}  floor {model.unknown_floor:.3f}  "
            f"fit {fitted:.0f} s",
            flush=True,
        )
    truth = np.concatenate(truth)
    badges = np.concatenate(badges)
    seconds = np.concatenate(seconds)
    print(f"\npooled ({len(truth):,} labelled rows), {algorithm}, {feature_set}:")
    for kind in KINDS:
        hits = np.concatenate(predicted[kind])
        figures = headline(truth, hits)
        rate = changes_per_hour(hits, badges, seconds)
        print(
            f"  {kind:<9} accuracy {figures['accuracy']:.3f}  balanced accuracy "
            f"{figures['balanced_accuracy']:.3f}  room changes/h {rate:.1f}"
        )
    print(f"  truth     room changes/h {changes_per_hour(truth, badges, seconds):.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="logistic")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--dead", action="store_true", help="the dead-beacon runs")
    parser.add_argument(
        "--via-cli",
        action="store_true",
        help="leave-one-out through stethoscope-evaluate processes (with the "
        "trainer's cross-validation: slow)",
    )
    parser.add_argument("--feature-set", default="masked")
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
    if args.dead or not args.via_cli:
        if args.dead:
            dead(args.dataset, args.algorithm)
        else:
            leave_one_out_here(args.dataset, args.algorithm, args.feature_set)
        print(f"{time.perf_counter() - started:.0f} s in all")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-locating-") as temporary:
        directory = Path(temporary)
        recordings = split(args.dataset, directory)
        leave_one_out(directory, recordings, args.algorithm)
    print(f"{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
