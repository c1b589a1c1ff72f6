"""Accuracy on real data: SPHERE, leave one recording out, with stethoscope-evaluate.

    .venv/bin/python tools/bench_sphere.py                      # --algorithm auto
    .venv/bin/python tools/bench_sphere.py --algorithm logistic

Splits ../shared/datasets/sphere/sphere_recordings_1_5.csv by recording
(badge_id sphere-01 … sphere-05) into a temporary directory; for each
recording runs ``stethoscope-evaluate --train <the other four> --test <it>
--json`` (a process of its own, as an operator would), then pools the five
folds: accuracy weighted by labelled test rows, balanced accuracy as the
mean over rooms of the pooled recall (recall × support summed over folds) —
the same figures as scoring all held-out rows at once, which is how the
dataset's README reports its reference table. Prints per fold, pooled, and
the per-room recall; docs/benchmarks.md has the figures.
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "sphere" / "sphere_recordings_1_5.csv"
REFERENCE = {
    "random forest, rows as they are": (0.893, 0.706),
    "+ plain HMM": (0.924, 0.736),
    "richer 1-s features + 5-s smoothing": (0.95, 0.83),
}


def split(path: Path, directory: Path) -> list[str]:
    """One CSV per recording (header repeated); the recordings' ids."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows: dict[str, list] = {}
        for row in reader:
            rows.setdefault(row[1], []).append(row)
    for recording, recording_rows in rows.items():
        with open(directory / f"{recording}.csv", "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(recording_rows)
    return sorted(rows)


def merge(directory: Path, recordings: list[str], target: Path) -> None:
    with open(target, "w", newline="") as out:
        for index, recording in enumerate(recordings):
            with open(directory / f"{recording}.csv", newline="") as handle:
                lines = handle.readlines()
            out.writelines(lines if index == 0 else lines[1:])


def pooled(folds: list[dict], kind: str) -> tuple[float, float, dict]:
    labelled = sum(fold["n_test_labelled"] for fold in folds)
    accuracy = (
        sum(fold[kind]["accuracy"] * fold["n_test_labelled"] for fold in folds)
        / labelled
    )
    hits: dict[str, float] = {}
    support: dict[str, int] = {}
    for fold in folds:
        for room, figures in fold["per_room"].items():
            hits[room] = (
                hits.get(room, 0.0) + figures[kind]["recall"] * figures["support"]
            )
            support[room] = support.get(room, 0) + figures["support"]
    recall = {room: hits[room] / support[room] for room in sorted(support)}
    return accuracy, sum(recall.values()) / len(recall), recall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="auto")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    args = parser.parse_args()
    evaluate = [sys.executable, "-m", "stethoscope.scripts.evaluate"]
    print(
        f"{platform.node()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    folds = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-sphere-") as temporary:
        directory = Path(temporary)
        recordings = split(args.dataset, directory)
        for held_out in recordings:
            train = directory / f"train-without-{held_out}.csv"
            merge(directory, [r for r in recordings if r != held_out], train)
            began = time.perf_counter()
            finished = subprocess.run(
                [
                    *evaluate,
                    "--train",
                    str(train),
                    "--test",
                    str(directory / f"{held_out}.csv"),
                    "--algorithm",
                    args.algorithm,
                    "--json",
                ],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if finished.returncode != 0:
                sys.exit(
                    f"stethoscope-evaluate failed on {held_out}:\n{finished.stderr}"
                )
            output = finished.stdout
            fold = json.loads(output)
            folds.append(fold)
            print(
                f"{held_out}: {fold['algorithm']:<12} "
                f"raw {fold['raw']['accuracy']:.3f}/"
                f"{fold['raw']['balanced_accuracy']:.3f}  smoothed "
                f"{fold['smoothed']['accuracy']:.3f}/"
                f"{fold['smoothed']['balanced_accuracy']:.3f}  "
                f"({time.perf_counter() - began:.0f} s)",
                flush=True,
            )
    print(
        f"\npooled over {len(folds)} held-out recordings "
        f"({sum(f['n_test_labelled'] for f in folds):,} labelled rows), "
        f"{time.perf_counter() - started:.0f} s in all:"
    )
    for kind in ("raw", "smoothed"):
        accuracy, balanced, recall = pooled(folds, kind)
        print(f"  {kind:<9} accuracy {accuracy:.3f}  balanced accuracy {balanced:.3f}")
        print("    recall: " + ", ".join(f"{r} {v:.2f}" for r, v in recall.items()))
    print("reference (dataset README):")
    for name, (accuracy, balanced) in REFERENCE.items():
        print(f"  {name:<38} {accuracy:.3f} / {balanced:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
