"""Offline evaluation: train on one labelled CSV, judge on another.

Trains exactly as ``stethoscope-train`` does (the same candidates, grouped
CV and selection: ``trainer.train``) and predicts the test file with the
model object the server uses (``RoomModel``): ``raw`` is the classifier's
top room per reading; ``smoothed`` follows each badge's readings of the test
file in time order through the model's forward filter, as the live system
would. Unlabelled test rows are predicted (they are part of a badge's
sequence, so they move the filter) but never scored.
"""

from collections.abc import Iterable

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
)

from ..labels.csvio import LabelledRow
from .data import from_rows
from .trainer import TrainingResult, train


def headline(truth: np.ndarray, predicted: np.ndarray) -> dict:
    if not len(truth):
        return {"accuracy": None, "balanced_accuracy": None}
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
    }


def evaluate(
    train_rows: Iterable[LabelledRow],
    test_rows: Iterable[LabelledRow],
    *,
    algorithm: str = "auto",
    seed: int = 0,
    progress=None,
) -> tuple[dict, TrainingResult]:
    """The evaluation report (JSON-able) and the training result behind it."""
    labelled, _ = from_rows(train_rows)
    result = train(labelled, algorithm=algorithm, seed=seed, progress=progress)
    model = result.model
    _, sequence = from_rows(test_rows)
    probabilities = model.predict_proba(sequence.readings)
    smoothed = model.smooth_sequences(probabilities, sequence.seconds, sequence.badges)
    rooms = np.asarray(model.rooms, dtype=object)
    labels = np.asarray(sequence.rooms, dtype=object)
    scored = np.asarray([room is not None for room in sequence.rooms], dtype=bool)
    truth = labels[scored]
    raw_rooms = rooms[probabilities.argmax(axis=1)][scored] if len(rooms) else truth
    smooth_rooms = rooms[smoothed.argmax(axis=1)][scored] if len(rooms) else truth
    test_rooms = sorted(set(truth.tolist()))
    per_room = {}
    if len(truth):
        for name, predicted in (("raw", raw_rooms), ("smoothed", smooth_rooms)):
            precision, recall, f1, support = precision_recall_fscore_support(
                truth, predicted, labels=test_rooms, zero_division=0
            )
            for i, room in enumerate(test_rooms):
                per_room.setdefault(room, {"support": int(support[i])})[name] = {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                }
    unknown = sorted(set(test_rooms) - set(model.rooms))
    imposters = sorted(
        {beacon for reading in sequence.readings for beacon in model.imposters(reading)}
    )
    return {
        "algorithm": result.algorithm,
        "raw": headline(truth, raw_rooms),
        "smoothed": headline(truth, smooth_rooms),
        "per_room": per_room,
        "n_train": len(labelled),
        "n_test": len(sequence.readings),
        "n_test_labelled": int(scored.sum()),
        "train_runs": result.n_runs,
        "unknown_rooms": unknown,
        "imposter_beacons": imposters,
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
