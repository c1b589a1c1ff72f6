"""Locator: where a badge is, from its readings, for the server and offline alike.

One object answers every locating question — the latest location (raw,
Bayes with the caller's priors, smoothed), a day's history, its grains and
its stays — so the figures ``stethoscope-evaluate`` reports are the figures
users get (ARCHITECTURE §6). It is pure: readings come in as
``(epoch seconds, {beacon: rssi})`` in time order, results go out as frozen
dataclasses and named tuples of plain Python values, ready to serialise.

Every call predicts its readings in one vectorised call to the model; the
only per-reading loops are the HMM's recursions over time
(``learning.hmm``), each step one rooms × rooms product.

- *Live* (``now``): the forward filter over the window given, as a live
  system must (no future readings). The room is the filter's; it is
  ``unknown`` when the latest reading holds no live vocabulary beacon, or
  when its top probability is below the model's calibrated floor
  (``RoomModel.unknown_floor``, learned by the trainer from out-of-fold
  filtered probabilities: below it the top room is more often wrong than
  right).
- *History*: a past day is known as a whole, so ``smoothed`` uses past and
  future readings: forward–backward marginals. Measured on SPHERE
  (leave-one-recording-out, logistic regression; docs/benchmarks.md
  "Locating accuracy (SPHERE)"): forward–backward 0.962 accuracy / 0.911
  balanced, 48.8 room changes an hour for 38.8 true; Viterbi 0.964 /
  0.918, 44.4; live filter 0.956 / 0.867, 69.7. Viterbi's single path is
  a hair better but gives no probability per reading, which the history
  shows and the stays' confidence is made of: computing it too would
  double the cost of a day (about 0.1 s each on 17,280 readings).
- *Adjacency*: rooms connected by a door (from the registry). With it, the
  filter's one-step moves between rooms with no door have probability 0
  (``learning.hmm.constrain``); a gap longer than the model's reset time
  starts afresh from the prior, so a badge switched off in one room and
  on in another is not held back.
- *Dead beacons*: the site's vocabulary beacons no badge has heard lately,
  given at construction. They are marked dead in every prediction, the
  way the model was trained (``learning.features`` docstring); a model
  of an older feature set gets them as "not heard".
"""

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..learning.hmm import (
    allowed_moves,
    constrain,
    emissions,
    forward,
    forward_backward,
)
from ..learning.predictor import RoomModel

ALGORITHMS = ("raw", "bayes", "smoothed")
GRAINS = (60, 600, 3600)
# Why a location is unknown (``Location.reason``).
NOTHING_HEARD = "no beacon the model knows was heard in the latest reading"
LOW_CONFIDENCE = "the most likely room is more likely wrong than right"

Reading = tuple[float, Mapping[str, int]]


class RoomProbability(NamedTuple):
    room_id: str
    probability: float
    room_name: str


class WeightedProbability(NamedTuple):
    room_id: str
    probability: float
    room_name: str
    weight: float  # the room's prior weight, normalised to sum 1


@dataclass(frozen=True, slots=True)
class Location:
    """Where a badge is at its latest reading.

    ``room_id``/``room_name``/``probability`` are the smoothed top room,
    given even when ``unknown`` (as the best guess, for people to weigh);
    ``since`` is when the badge entered it, as far as the window shows.
    """

    seconds: float
    room_id: str
    room_name: str
    probability: float
    since: float
    raw: tuple[RoomProbability, ...]
    bayes: tuple[WeightedProbability, ...] | None
    smoothed: tuple[RoomProbability, ...]
    unknown: bool
    reason: str | None
    imposter_beacons: tuple[str, ...]
    dead_beacons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class History:
    """The top room per reading: ``room_index`` into ``rooms``; ``algorithm``
    is raw, bayes, smoothed (forward–backward) or live (the filter)."""

    algorithm: str
    rooms: tuple[str, ...]
    room_names: tuple[str, ...]
    seconds: tuple[float, ...]
    room_index: tuple[int, ...]
    probability: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.seconds)


@dataclass(frozen=True, slots=True)
class Grain:
    """The most likely room of one period (``start`` .. ``start + grain``):
    the room whose readings carry the most probability; ``probability`` is
    that sum over the period's readings (its confidence-weighted share)."""

    start: float
    room_id: str
    room_name: str
    probability: float
    readings: int


@dataclass(frozen=True, slots=True)
class Stay:
    """Consecutive readings with one top room: from the first reading's time
    to the last's (inclusive); ``confidence`` is their mean probability."""

    room_id: str
    from_seconds: float
    to_seconds: float
    readings: int
    confidence: float
    room_name: str


class Locator:
    """Locations of badges from their readings with one model of one site."""

    def __init__(
        self,
        model: RoomModel,
        room_names: Mapping[str, str],
        adjacency: Mapping[str, set[str]] | None = None,
        dead_beacons: Collection[str] = frozenset(),
    ):
        self.model = model
        self.rooms = model.rooms
        self.room_names = tuple(room_names.get(room, room) for room in self.rooms)
        self.motion = constrain(model.motion, allowed_moves(self.rooms, adjacency))
        vocabulary = set(model.vocabulary.beacons)
        self.dead_beacons = tuple(sorted(set(dead_beacons) & vocabulary))
        self._live = vocabulary - set(self.dead_beacons)
        self._index = {room: i for i, room in enumerate(self.rooms)}

    # -- pieces ---------------------------------------------------------

    def probabilities(self, beacons: Sequence[Mapping[str, int]]) -> np.ndarray:
        """(n, rooms) raw probabilities: one vectorised call to the model.

        In float64, renormalised: estimators fed float32 rows answer in
        float32, whose rows sum to 1 only to about 1e-7.
        """
        probabilities = self.model.predict_proba(beacons, self.dead_beacons)
        probabilities = probabilities.astype(float)
        total = probabilities.sum(axis=1, keepdims=True)
        return probabilities / np.where(total > 0, total, 1.0)

    def weights(self, priors: Mapping[str, float]) -> np.ndarray:
        """The priors as weights over the model's rooms, summing to 1.

        Rooms not listed weigh 1.0; ids the model does not know are ignored.
        ValueError, naming the problem, for a weight that is not a finite
        number >= 0 or when every room weighs 0.
        """
        weights = np.ones(len(self.rooms))
        for room, weight in priors.items():
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not math.isfinite(weight)
                or weight < 0
            ):
                raise ValueError(
                    f"the prior weight of room {room!r} must be a number >= 0 "
                    f"(got {weight!r})"
                )
            if room in self._index:
                weights[self._index[room]] = float(weight)
        total = weights.sum()
        if total <= 0:
            raise ValueError("the prior weights are all 0: no room is possible")
        return weights / total

    def _ranked(self, probabilities: np.ndarray) -> tuple[RoomProbability, ...]:
        # One conversion of the sorted row to floats, not one numpy scalar
        # per room: occupancy ranks two rows of 40 rooms for every badge.
        order = np.argsort(-probabilities, kind="stable")
        rooms, names = self.rooms, self.room_names
        return tuple(
            map(
                RoomProbability,
                [rooms[i] for i in order.tolist()],
                probabilities[order].tolist(),
                [names[i] for i in order.tolist()],
            )
        )

    @staticmethod
    def _weighted(probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Raw × weight, normalised per row; where the weights leave only rooms
        the model gives no chance at all, the weights alone."""
        combined = probabilities * weights
        total = combined.sum(axis=-1, keepdims=True)
        fallback = np.broadcast_to(weights, combined.shape)
        return np.where(total > 0, combined / np.where(total > 0, total, 1), fallback)

    # -- the latest location -------------------------------------------

    def raw(self, beacons: Mapping[str, int]) -> list[RoomProbability]:
        """The model's room probabilities for one reading, highest first."""
        return list(self._ranked(self.probabilities([beacons])[0]))

    def bayes(
        self, raw: Sequence[RoomProbability], priors: Mapping[str, float]
    ) -> list[WeightedProbability]:
        """``raw`` × the rooms' prior weights, normalised, highest first."""
        weights = self.weights(priors)
        probabilities = np.zeros(len(self.rooms))
        for room_id, probability, *_ in raw:
            if room_id in self._index:
                probabilities[self._index[room_id]] = probability
        posterior = self._weighted(probabilities, weights)
        return [
            WeightedProbability(
                room, probability, name, float(weights[self._index[room]])
            )
            for room, probability, name in self._ranked(posterior)
        ]

    def now(
        self,
        readings: Sequence[Reading],
        priors: Mapping[str, float] | None = None,
    ) -> Location:
        """Where the badge is at the last of ``readings`` (time order): the
        forward filter over them all, one model call for the window."""
        if not readings:
            raise ValueError("no readings to locate from")
        seconds = np.asarray([moment for moment, _ in readings], dtype=float)
        beacons = [heard for _, heard in readings]
        weights = None if priors is None else self.weights(priors)
        probabilities = self.probabilities(beacons)
        prior = self.model.class_prior
        filtered, _, _ = forward(
            emissions(probabilities, prior), seconds, prior, self.motion
        )
        latest = filtered[-1]
        top = int(latest.argmax())
        path = filtered.argmax(axis=1)
        # The trailing run of readings with the current room on top.
        elsewhere = np.flatnonzero(path != top)
        entered = int(elsewhere[-1]) + 1 if len(elsewhere) else 0
        raw = self._ranked(probabilities[-1])
        bayes = None
        if weights is not None:
            posterior = self._weighted(probabilities[-1], weights)
            bayes = tuple(
                WeightedProbability(
                    room, probability, name, float(weights[self._index[room]])
                )
                for room, probability, name in self._ranked(posterior)
            )
        if not self._live.intersection(beacons[-1]):
            reason = NOTHING_HEARD
        elif latest[top] < self.model.unknown_floor:
            reason = LOW_CONFIDENCE
        else:
            reason = None
        return Location(
            seconds=float(seconds[-1]),
            room_id=self.rooms[top],
            room_name=self.room_names[top],
            probability=float(latest[top]),
            since=float(seconds[entered]),
            raw=raw,
            bayes=bayes,
            smoothed=self._ranked(latest),
            unknown=reason is not None,
            reason=reason,
            imposter_beacons=tuple(self.model.imposters(beacons[-1])),
            dead_beacons=self.dead_beacons,
        )

    def _filter(self, probabilities: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """The live forward filter: each reading's belief given those before."""
        prior = self.model.class_prior
        likelihood = emissions(probabilities, prior)
        return forward(likelihood, seconds, prior, self.motion)[0]

    # -- history --------------------------------------------------------

    def live_history(self, readings: Sequence[Reading]) -> History:
        """What ``now`` would have said at each reading, had the window held
        every reading before it (``stethoscope-evaluate``'s live figures)."""
        seconds = np.asarray([moment for moment, _ in readings], dtype=float)
        probabilities = self.probabilities([heard for _, heard in readings])
        if len(readings):
            probabilities = self._filter(probabilities, seconds)
        return self._history("live", seconds, probabilities)

    def _history(
        self, algorithm: str, seconds: np.ndarray, probabilities: np.ndarray
    ) -> History:
        index = probabilities.argmax(axis=1)
        return History(
            algorithm=algorithm,
            rooms=self.rooms,
            room_names=self.room_names,
            seconds=tuple(seconds.tolist()),
            room_index=tuple(index.tolist()),
            probability=tuple(probabilities[np.arange(len(index)), index].tolist()),
        )

    def history(
        self,
        readings: Sequence[Reading],
        algorithm: str,
        priors: Mapping[str, float] | None = None,
    ) -> History:
        """The top room and its probability for every reading (time order).

        ``smoothed`` is forward–backward over all of them (module
        docstring); ``bayes`` weighs each reading's raw probabilities with
        ``priors``, which no other algorithm takes (ValueError).
        """
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})"
            )
        if priors is not None and algorithm != "bayes":
            raise ValueError("priors apply to the bayes algorithm only")
        seconds = np.asarray([moment for moment, _ in readings], dtype=float)
        probabilities = self.probabilities([heard for _, heard in readings])
        if algorithm == "bayes":
            probabilities = self._weighted(probabilities, self.weights(priors or {}))
        elif algorithm == "smoothed" and len(readings):
            prior = self.model.class_prior
            probabilities = forward_backward(
                emissions(probabilities, prior), seconds, prior, self.motion
            )
        return self._history(algorithm, seconds, probabilities)

    def grains(self, history: History, grain: int, offset: float) -> list[Grain]:
        """The most likely room of each ``grain``-second period that has
        readings, periods starting at ``offset`` (readings before it belong
        to no period)."""
        if grain not in GRAINS:
            raise ValueError(f"grain must be one of {GRAINS} seconds (got {grain!r})")
        seconds = np.asarray(history.seconds, dtype=float)
        inside = seconds >= offset
        period = ((seconds[inside] - offset) // grain).astype(np.int64)
        rooms = np.asarray(history.room_index, dtype=np.int64)[inside]
        probability = np.asarray(history.probability, dtype=float)[inside]
        periods, which = np.unique(period, return_inverse=True)
        n = len(self.rooms)
        mass = np.bincount(
            which * n + rooms, weights=probability, minlength=len(periods) * n
        ).reshape(len(periods), n)
        counts = np.bincount(which, minlength=len(periods))
        best = mass.argmax(axis=1)
        return [
            Grain(
                start=float(offset + start * grain),
                room_id=self.rooms[room],
                room_name=self.room_names[room],
                probability=float(mass[i, room] / counts[i]),
                readings=int(counts[i]),
            )
            for i, (start, room) in enumerate(
                zip(periods.tolist(), best.tolist(), strict=True)
            )
        ]

    def stays(self, history: History) -> list[Stay]:
        """Runs of consecutive readings with one top room, in time order; a
        silence longer than the model's reset time ends a stay too (nothing
        is known of it)."""
        if not len(history):
            return []
        seconds = np.asarray(history.seconds, dtype=float)
        rooms = np.asarray(history.room_index, dtype=np.int64)
        probability = np.asarray(history.probability, dtype=float)
        breaks = (rooms[1:] != rooms[:-1]) | (
            np.diff(seconds) > self.motion.reset_seconds
        )
        starts = np.r_[0, np.flatnonzero(breaks) + 1]
        ends = np.r_[starts[1:], len(rooms)]
        sums = np.add.reduceat(probability, starts)
        return [
            Stay(
                room_id=self.rooms[rooms[start]],
                from_seconds=float(seconds[start]),
                to_seconds=float(seconds[end - 1]),
                readings=int(end - start),
                confidence=float(total / (end - start)),
                room_name=self.room_names[rooms[start]],
            )
            for start, end, total in zip(
                starts.tolist(), ends.tolist(), sums.tolist(), strict=True
            )
        ]
