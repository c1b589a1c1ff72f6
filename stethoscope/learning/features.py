"""From readings to feature vectors: pure functions, no I/O.

A reading is what a badge heard: ``{beacon_id: rssi}``. A model knows the
beacons of its training data (its *vocabulary*); a reading becomes one row
of numbers in vocabulary order, with "not heard" as a *floor* value below
the weakest RSSI seen in training. Beacons outside the vocabulary cannot be
used by the model: they are reported as imposters (a new or moved beacon, or
a neighbour's), so that staff can see why a location is unsure.

The default feature set (``"relative"``) adds each beacon's RSSI relative
to the strongest of the reading, and the number of beacons heard: how a
badge is worn and which way the resident faces move every level together,
the differences between beacons much less. On the SPHERE recordings it is
worth little (+0.2 points of accuracy, raw and smoothed, over the RSSI row
alone, ``"rssi"``; docs/benchmarks.md) — kept because it is no worse
anywhere and costs only a wider row.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# How far below the weakest RSSI of the training data "not heard" lies: far
# enough to be its own level, near enough not to dominate a distance (kNN).
FLOOR_MARGIN_DB = 10
# The floor never goes below what a reading can hold (-128 is "not heard").
LOWEST_FLOOR = -127
FEATURE_SETS = ("rssi", "relative")
DEFAULT_FEATURE_SET = "relative"


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The beacons a model knows, in column order, and the not-heard floor."""

    beacons: tuple[str, ...]
    floor: float

    def __post_init__(self):
        if not self.beacons:
            raise ValueError("a vocabulary needs at least one beacon")

    def as_json(self) -> dict:
        return {"beacons": list(self.beacons), "floor": self.floor}

    @classmethod
    def from_json(cls, data: Mapping) -> "Vocabulary":
        return cls(tuple(data["beacons"]), float(data["floor"]))


def build_vocabulary(readings: Iterable[Mapping[str, int]]) -> Vocabulary:
    """The vocabulary of ``readings``: every beacon heard, sorted by id."""
    beacons: set[str] = set()
    weakest = 0
    for reading in readings:
        beacons.update(reading)
        if reading:
            weakest = min(weakest, min(reading.values()))
    if not beacons:
        raise ValueError("no beacon was heard in the training data")
    floor = max(LOWEST_FLOOR, weakest - FLOOR_MARGIN_DB)
    return Vocabulary(tuple(sorted(beacons)), float(floor))


def rssi_matrix(
    readings: Sequence[Mapping[str, int]], vocabulary: Vocabulary
) -> np.ndarray:
    """RSSI per vocabulary beacon, one row per reading; the floor if not heard
    (or heard weaker than it)."""
    column = {beacon: index for index, beacon in enumerate(vocabulary.beacons)}
    matrix = np.full((len(readings), len(column)), vocabulary.floor, dtype=np.float32)
    for row, reading in enumerate(readings):
        for beacon, rssi in reading.items():
            index = column.get(beacon)
            if index is not None:
                # Weaker than the floor (weaker than anything the model was
                # trained on, by a margin): as good as not heard, never a
                # level of absence the model has not seen.
                matrix[row, index] = max(rssi, vocabulary.floor)
    return matrix


def feature_matrix(
    readings: Sequence[Mapping[str, int]],
    vocabulary: Vocabulary,
    feature_set: str = DEFAULT_FEATURE_SET,
) -> np.ndarray:
    """The model's input for ``readings`` (float32, one row per reading)."""
    rssi = rssi_matrix(readings, vocabulary)
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}")
    if feature_set == "rssi":
        return rssi
    # Relative to the strongest beacon of the same reading; a beacon not
    # heard stays at the floor's distance below it (never above 0).
    strongest = rssi.max(axis=1, keepdims=True)
    heard = (rssi > vocabulary.floor).sum(axis=1, keepdims=True, dtype=np.float32)
    return np.hstack([rssi, rssi - strongest, heard])


def feature_names(vocabulary: Vocabulary, feature_set: str) -> list[str]:
    """Column names of ``feature_matrix``, for reports and importances."""
    names = [f"rssi:{beacon}" for beacon in vocabulary.beacons]
    if feature_set == "relative":
        names += [f"relative:{beacon}" for beacon in vocabulary.beacons]
        names.append("heard")
    return names


def imposters(reading: Mapping[str, int], vocabulary: Vocabulary) -> list[str]:
    """The beacons of ``reading`` the model does not know, sorted."""
    known = vocabulary.beacons
    return sorted(beacon for beacon in reading if beacon not in known)
