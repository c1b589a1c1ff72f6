"""Offline evaluation: train on one labelled CSV, judge the Locator on another.

Trains exactly as ``stethoscope-train`` does (``trainer.train``: the same
candidates, grouped CV and selection) and runs each test badge's readings,
in time order, through the ``Locator`` the server uses:

- ``raw``: the model's top room per reading;
- ``smoothed``: the live forward filter, each reading given those before
  it (``Locator.live_history``), as ``Locator.now`` answers;
- ``history``: forward–backward over the badge's whole test sequence, as
  the location history shows a finished day (``Locator.history``).

Unlabelled test rows are predicted (they are part of a badge's sequence, so
they move the filter) but never scored. ``dead_beacons`` is the dead-beacon
experiment: those beacons are taken out of every test reading (nobody hears
a dead beacon) and the Locator is told they are dead, as the server would
be.
"""

from collections.abc import Collection, Iterable

import numpy as np

from ..labels.csvio import LabelledRow
from ..learning.data import from_rows
from ..learning.evaluation import changes_per_hour, headline, per_room
from ..learning.features import DEFAULT_FEATURE_SET
from ..learning.trainer import TrainingResult, train
from .locator import LOW_CONFIDENCE, Locator

KINDS = ("raw", "smoothed", "history")


def evaluate(
    train_rows: Iterable[LabelledRow],
    test_rows: Iterable[LabelledRow],
    *,
    algorithm: str = "auto",
    seed: int = 0,
    progress=None,
    dead_beacons: Collection[str] = (),
    feature_set: str = DEFAULT_FEATURE_SET,
) -> tuple[dict, TrainingResult]:
    """The evaluation report (JSON-able) and the training result behind it."""
    labelled, _ = from_rows(train_rows)
    result = train(
        labelled,
        algorithm=algorithm,
        seed=seed,
        progress=progress,
        feature_set=feature_set,
    )
    model = result.model
    dead = frozenset(dead_beacons)
    _, sequence = from_rows(test_rows)
    readings = [
        {b: rssi for b, rssi in reading.items() if b not in dead}
        for reading in sequence.readings
    ]
    locator = Locator(model, {}, None, dead)
    rooms = np.asarray(model.rooms, dtype=object)
    predicted = {kind: np.empty(len(readings), dtype=object) for kind in KINDS}
    confidence = np.zeros(len(readings))
    for badge in sorted(set(sequence.badges.tolist())):
        mine = np.flatnonzero(sequence.badges == badge)
        mine = mine[np.argsort(sequence.seconds[mine], kind="stable")]
        timed = [(float(sequence.seconds[i]), readings[i]) for i in mine]
        raw = locator.history(timed, "raw")
        live = locator.live_history(timed)
        smoothed = locator.history(timed, "smoothed")
        predicted["raw"][mine] = rooms[list(raw.room_index)]
        predicted["smoothed"][mine] = rooms[list(live.room_index)]
        predicted["history"][mine] = rooms[list(smoothed.room_index)]
        confidence[mine] = live.probability
    scored = np.asarray([room is not None for room in sequence.rooms], dtype=bool)
    truth = np.asarray(sequence.rooms, dtype=object)[scored]
    badges = sequence.badges[scored]
    seconds = sequence.seconds[scored]
    hits = {kind: predicted[kind][scored] for kind in KINDS}
    low = confidence[scored] < model.unknown_floor
    test_rooms = set(truth.tolist())
    imposters = sorted(
        {beacon for reading in readings for beacon in model.imposters(reading)}
    )
    return {
        "algorithm": result.algorithm,
        **{kind: headline(truth, hits[kind]) for kind in KINDS},
        "room_changes_per_hour": {
            "truth": changes_per_hour(truth, badges, seconds),
            **{kind: changes_per_hour(hits[kind], badges, seconds) for kind in KINDS},
        },
        "unknown": {
            "floor": model.unknown_floor,
            "reason": LOW_CONFIDENCE,
            "share": float(low.mean()) if len(low) else None,
            # How often the live room was wrong when called unknown, and
            # when not: the floor is doing its job when the first is high.
            "wrong_when_unknown": _share(hits["smoothed"][low] != truth[low]),
            "wrong_when_known": _share(hits["smoothed"][~low] != truth[~low]),
        },
        "per_room": per_room(truth, hits),
        "n_train": len(labelled),
        "n_test": len(readings),
        "n_test_labelled": int(scored.sum()),
        "train_runs": result.n_runs,
        "unknown_rooms": sorted(test_rooms - set(model.rooms)),
        "imposter_beacons": imposters,
        "dead_beacons": list(locator.dead_beacons),
        "feature_set": model.feature_set,
        "cv": {
            "accuracy": result.metrics["accuracy"],
            "balanced_accuracy": result.metrics["balanced_accuracy"],
            "balanced_log_loss": result.metrics["balanced_log_loss"],
            "smoothed": {
                "accuracy": result.metrics["smoothed"]["accuracy"],
                "balanced_accuracy": result.metrics["smoothed"]["balanced_accuracy"],
            },
            "scheme": result.metrics["cv"],
            "candidates": result.metrics["candidates"],
        },
        "warnings": result.warnings,
        "training_seconds": result.metrics["training_seconds"],
    }, result


def _share(flags: np.ndarray) -> float | None:
    return float(flags.mean()) if len(flags) else None
