"""Offline figures of predicted rooms against labelled ones: pure scoring.

The predictions come from the Locator (``locating.evaluation``), the one
code path of the server; this module only judges them. Besides accuracy
and balanced accuracy it counts *room changes per hour*: a locator can be
right most of the time and still flap between two rooms every few
seconds, which a history page shows as confetti. Predicted and true
changes are counted over the same rows (labelled ones, consecutive per
badge), so their ratio says how much a locator flaps.
"""

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
)


def headline(truth: np.ndarray, predicted: np.ndarray) -> dict:
    if not len(truth):
        return {"accuracy": None, "balanced_accuracy": None}
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
    }


def per_room(truth: np.ndarray, predictions: dict[str, np.ndarray]) -> dict:
    """{room: {"support": n, kind: {precision, recall, f1}}} per prediction kind."""
    rooms = sorted(set(truth.tolist()))
    found: dict[str, dict] = {}
    if not len(truth):
        return found
    for kind, predicted in predictions.items():
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, predicted, labels=rooms, zero_division=0
        )
        for i, room in enumerate(rooms):
            found.setdefault(room, {"support": int(support[i])})[kind] = {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
            }
    return found


def changes_per_hour(
    rooms: Sequence, badges: Sequence, seconds: np.ndarray
) -> float | None:
    """Room changes an hour over rows in time order per badge: changes
    between consecutive rows of one badge, over the time from each badge's
    first row to its last (None when that time is 0)."""
    rooms = np.asarray(rooms, dtype=object)
    badges = np.asarray(badges, dtype=object)
    seconds = np.asarray(seconds, dtype=float)
    changes = 0
    span = 0.0
    for badge in set(badges.tolist()):
        mine = np.flatnonzero(badges == badge)
        mine = mine[np.argsort(seconds[mine], kind="stable")]
        changes += int((rooms[mine][1:] != rooms[mine][:-1]).sum())
        span += float(seconds[mine[-1]] - seconds[mine[0]])
    return changes * 3600.0 / span if span > 0 else None
