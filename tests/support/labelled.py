"""Synthetic labelled data for trainer tests: rooms with a beacon each.

A badge in room r hears beacon r strongly and the others weakly, with
noise; each training run is one badge in one room for a stretch of
readings 5 s apart, runs of a badge following each other in time.
"""

import numpy as np

from stethoscope.learning.trainer import LabelledData


def synthetic_data(
    *,
    rooms: int = 3,
    runs_per_room: int = 4,
    readings_per_run: int = 20,
    noise: float = 4.0,
    seed: int = 0,
) -> LabelledData:
    rng = np.random.default_rng(seed)
    readings, labels, runs, badges, seconds, stays = [], [], [], [], [], []
    clock = 1_700_000_000.0
    run_id = 0
    for repeat in range(runs_per_room):
        for room in range(rooms):
            run_id += 1
            badge = f"badge-{repeat % 2}"
            start = clock
            for _ in range(readings_per_run):
                heard = {}
                for beacon in range(rooms):
                    level = -55 if beacon == room else -80
                    rssi = int(round(level + rng.normal(0, noise)))
                    if rssi > -95:
                        heard[f"beacon-{beacon}"] = rssi
                readings.append(heard)
                labels.append(f"room-{room}")
                runs.append(run_id)
                badges.append(badge)
                seconds.append(clock)
                clock += 5.0
            stays.append((run_id, badge, f"room-{room}", start, clock))
    return LabelledData(
        readings,
        np.asarray(labels, dtype=object),
        np.asarray(runs),
        np.asarray(badges, dtype=object),
        np.asarray(seconds),
        stays,
    )
