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

Dead beacons. A beacon that no badge of the site has heard lately (a flat
battery, a beacon taken down) is not the same as a beacon this badge does
not hear: read as "not heard", it says "far from that beacon" for every
badge, and a model trained only on live beacons then sends everyone away
from it. The ``"masked"`` feature set (the default) adds one flag per
vocabulary beacon, 1 when the beacon is dead; its RSSI is then the floor.
The trainer teaches the model what a dead beacon looks like by adding a
copy of the training readings with one random beacon each marked dead
(``mask_one_beacon``), so the flags and the rest of the row carry the
evidence that is left. Measured on SPHERE (train on recordings 1–4, test
on 5, logistic regression; raw → forward–backward accuracy; docs/benchmarks.md
"Locating accuracy (SPHERE)"):

============  ==========  ==============  =================  ===============
dead beacon   naive       masked copies,  masked copies      (nothing dead)
                          no flags        + flags (chosen)
============  ==========  ==============  =================  ===============
Kitchen_AP    0.66→0.70   0.87→0.93       0.89→0.96          naive 0.92→0.97
Lounge_AP     0.69→0.74   0.45→0.48       0.79→0.96          flags 0.92→0.97
Upstairs_AP   0.69→0.60   0.79→0.95       0.84→0.95
============  ==========  ==============  =================  ===============

Masked copies without the flags make "not heard" ambiguous (dead or far?)
and lose the room of the dead beacon itself (Lounge_AP: worse than
naive); with the flags nothing is lost when every beacon is alive. Per-beacon
model variants would do as well but cost one model per beacon (fifty in a
large house). A model of an older feature set ("rssi", "relative") has no
flags: a dead beacon is then given to it as not heard (the naive column).
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import methodcaller

import numpy as np

# How far below the weakest RSSI of the training data "not heard" lies: far
# enough to be its own level, near enough not to dominate a distance (kNN).
FLOOR_MARGIN_DB = 10
# The floor never goes below what a reading can hold (-128 is "not heard").
LOWEST_FLOOR = -127
FEATURE_SETS = ("rssi", "relative", "masked")
DEFAULT_FEATURE_SET = "masked"
# The feature sets whose rows say which beacons are dead (module docstring).
DEAD_AWARE = frozenset({"masked"})


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
    # Every (reading, beacon, rssi) at once and one assignment: a day of
    # 17,280 readings of ~8 beacons was 65–80 ms as a loop over them
    # (32-bit arrays: a training set of a million readings makes several).
    heard = list(map(len, readings))
    total = sum(heard)
    columns = np.fromiter(
        map(column.get, chain.from_iterable(readings), repeat(-1)),
        dtype=np.int32,
        count=total,
    )
    rssi = np.fromiter(
        chain.from_iterable(map(methodcaller("values"), readings)),
        dtype=np.float32,
        count=total,
    )
    rows = np.repeat(np.arange(len(readings), dtype=np.int32), heard)
    known = columns >= 0
    # Weaker than the floor (weaker than anything the model was trained on,
    # by a margin): as good as not heard, never a level of absence the
    # model has not seen.
    matrix[rows[known], columns[known]] = np.maximum(rssi[known], vocabulary.floor)
    return matrix


def dead_mask(n: int, vocabulary: Vocabulary, dead: Collection[str] = ()) -> np.ndarray:
    """(n, beacons) bool: True in the columns of the ``dead`` beacons."""
    columns = np.asarray([beacon in dead for beacon in vocabulary.beacons])
    return np.broadcast_to(columns, (n, len(columns)))


def feature_matrix(
    readings: Sequence[Mapping[str, int]],
    vocabulary: Vocabulary,
    feature_set: str = DEFAULT_FEATURE_SET,
    dead: Collection[str] = (),
) -> np.ndarray:
    """The model's input for ``readings`` (float32, one row per reading),
    with the vocabulary beacons in ``dead`` marked dead in every row."""
    rssi = rssi_matrix(readings, vocabulary)
    return features_of(
        rssi, dead_mask(len(rssi), vocabulary, dead), vocabulary, feature_set
    )


def features_of(
    rssi: np.ndarray, dead: np.ndarray, vocabulary: Vocabulary, feature_set: str
) -> np.ndarray:
    """Features of an ``rssi_matrix`` whose ``dead`` cells (bool, same shape)
    are beacons nobody hears: the floor, and flagged where the set says so."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}")
    if dead.any():
        rssi = np.where(dead, np.float32(vocabulary.floor), rssi)
    if feature_set == "rssi":
        return rssi
    # Relative to the strongest beacon of the same reading; a beacon not
    # heard stays at the floor's distance below it (never above 0).
    strongest = rssi.max(axis=1, keepdims=True)
    heard = (rssi > vocabulary.floor).sum(axis=1, keepdims=True, dtype=np.float32)
    columns = [rssi, rssi - strongest, heard]
    if feature_set in DEAD_AWARE:
        columns.append(dead.astype(np.float32))
    return np.hstack(columns)


def mask_one_beacon(
    rssi: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Training augmentation: (rssi, dead) of a copy of the rows with one
    vocabulary beacon, drawn at random per row, marked dead."""
    dead = np.zeros(rssi.shape, dtype=bool)
    if rssi.shape[1] > 1:
        dead[np.arange(len(rssi)), rng.integers(0, rssi.shape[1], len(rssi))] = True
    return rssi, dead


def feature_names(vocabulary: Vocabulary, feature_set: str) -> list[str]:
    """Column names of ``feature_matrix``, for reports and importances."""
    names = [f"rssi:{beacon}" for beacon in vocabulary.beacons]
    if feature_set != "rssi":
        names += [f"relative:{beacon}" for beacon in vocabulary.beacons]
        names.append("heard")
    if feature_set in DEAD_AWARE:
        names += [f"dead:{beacon}" for beacon in vocabulary.beacons]
    return names


def imposters(reading: Mapping[str, int], vocabulary: Vocabulary) -> list[str]:
    """The beacons of ``reading`` the model does not know, sorted."""
    known = vocabulary.beacons
    return sorted(beacon for beacon in reading if beacon not in known)
