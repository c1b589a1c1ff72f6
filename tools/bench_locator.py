"""Locator timings: the live location and a full day's history, no database.

    .venv/bin/python tools/bench_locator.py

Fits the usual winner (logistic regression, the trainer's ``fit_model``) on
SPHERE recordings 1–4, then times, in this process:

- ``now`` on a window of 60 readings (5 minutes at one reading every 5 s,
  the server's recent window): p50 and p95 of 300 calls;
- ``history(..., "smoothed")`` on a day of 17,280 readings (sphere-05's
  readings repeated, 5 s apart) on a fresh Locator: cold (the first call)
  and warm (best of 3), with ``raw`` and the grains and stays beside it.

The database's part of the 5-ms budget is not in these figures.
"""

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stethoscope.labels.csvio import read_rows  # noqa: E402
from stethoscope.learning.data import from_rows  # noqa: E402
from stethoscope.learning.trainer import fit_model  # noqa: E402
from stethoscope.locating.locator import Locator  # noqa: E402

DATASET = Path("/work/shared/datasets/sphere/sphere_recordings_1_5.csv")
DAY = 17_280
WINDOW = 60


def main() -> int:
    dataset = Path(sys.argv[1]) if len(sys.argv) > 1 else DATASET
    with open("/proc/cpuinfo") as handle:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in handle
                if line.startswith("model name")
            ),
            "unknown",
        )
    print(f"{platform.node()}: {cpu}, nproc {os.cpu_count()}")
    with open(dataset, newline="") as handle:
        rows = list(read_rows(handle))
    train, _ = from_rows([r for r in rows if r.badge_id != "sphere-05"])
    _, test = from_rows([r for r in rows if r.badge_id == "sphere-05"])
    rooms = sorted(set(train.rooms.tolist()))
    model = fit_model(train, "logistic", rooms)
    day = [
        (1_700_000_000.0 + 5.0 * i, test.readings[i % len(test.readings)])
        for i in range(DAY)
    ]
    locator = Locator(model, {room: room.title() for room in rooms})
    times = []
    for i in range(300):
        window = day[i : i + WINDOW]
        began = time.perf_counter()
        locator.now(window, {"living": 2.0})
        times.append(time.perf_counter() - began)
    times.sort()
    print(
        f"now, {WINDOW} readings, with priors: p50 {statistics.median(times) * 1e3:.2f}"
        f" ms, p95 {times[int(0.95 * len(times))] * 1e3:.2f} ms"
    )
    fresh = Locator(model, {room: room.title() for room in rooms})
    began = time.perf_counter()
    history = fresh.history(day, "smoothed")
    cold = time.perf_counter() - began
    warm = []
    for _ in range(3):
        began = time.perf_counter()
        fresh.history(day, "smoothed")
        warm.append(time.perf_counter() - began)
    began = time.perf_counter()
    fresh.history(day, "raw")
    raw = time.perf_counter() - began
    began = time.perf_counter()
    grains = fresh.grains(history, 600, day[0][0])
    stays = fresh.stays(history)
    shaped = time.perf_counter() - began
    print(
        f"history smoothed, {DAY:,} readings: cold {cold * 1e3:.0f} ms, "
        f"warm {min(warm) * 1e3:.0f} ms; raw {raw * 1e3:.0f} ms; "
        f"grains (600 s) + stays {shaped * 1e3:.1f} ms "
        f"({len(grains)} grains, {len(stays)} stays)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
