"""Smoothing over time: an HMM forward filter over one badge's readings.

A resident stays in a room for minutes and leaves it through a door, while
single readings flicker between neighbouring rooms. The filter carries a
belief over rooms from reading to reading: between two readings ``dt``
seconds apart the resident stays in room r with probability
``exp(-dt / dwell[r])`` and otherwise moves as ``moves[r]`` says; each
reading then weighs the belief by its likelihood, taken as the classifier's
posterior divided by the class prior, tempered (below) (the classifier
already saw the
training data's room frequencies: dividing them out keeps them from being
counted twice, since the filter's own belief carries the prior).

Only past and current readings are used, as a live system must. A gap of
more than ``reset_seconds`` starts afresh from the prior.

``Motion`` is learned from the training runs (how long a badge stayed, and
where it went next) or built from settings; it is stored with the model.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Neither a dwell learned from a few short runs nor one from a night in bed
# should make the filter deaf or jumpy.
MIN_DWELL_SECONDS = 5.0
MAX_DWELL_SECONDS = 3600.0
DEFAULT_DWELL_SECONDS = 100.0
DEFAULT_RESET_SECONDS = 300.0
# Pseudo-counts spread over every other room, so an unseen move is unlikely
# but possible.
MOVE_PSEUDOCOUNT = 0.5
# Consecutive readings are not independent evidence: a badge repeats one
# 5-s payload, and the same body shadows the same beacons for a while.
# Raising each reading's likelihood to a power below one discounts that
# double counting (SPHERE: +0.3 points of smoothed accuracy at 0.7, flat
# from 0.5 to 1; docs/benchmarks.md).
EMISSION_POWER = 0.7
# No room is ever certain or impossible: a floor on each likelihood keeps
# one wild reading from zeroing the belief.
LIKELIHOOD_FLOOR = 1e-3


@dataclass(frozen=True)
class Motion:
    """How badges move between rooms (index order = the model's rooms)."""

    dwell_seconds: np.ndarray  # (n,) mean stay per room
    moves: np.ndarray  # (n, n) where a badge goes when it leaves; rows sum to 1
    reset_seconds: float = DEFAULT_RESET_SECONDS

    def as_json(self) -> dict:
        return {
            "dwell_seconds": [round(float(x), 3) for x in self.dwell_seconds],
            "moves": [[round(float(x), 6) for x in row] for row in self.moves],
            "reset_seconds": self.reset_seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "Motion":
        return cls(
            np.asarray(data["dwell_seconds"], dtype=float),
            np.asarray(data["moves"], dtype=float),
            float(data["reset_seconds"]),
        )

    @classmethod
    def default(cls, n_rooms: int, dwell_seconds: float = DEFAULT_DWELL_SECONDS):
        """Every room alike: a fixed mean stay, any room equally likely next."""
        return cls(np.full(n_rooms, dwell_seconds), _uniform_moves(n_rooms))


def _uniform_moves(n: int) -> np.ndarray:
    if n == 1:
        return np.ones((1, 1))
    moves = np.full((n, n), 1.0 / (n - 1))
    np.fill_diagonal(moves, 0.0)
    return moves


def learn_motion(
    stays: Sequence[tuple[str, int, float, float]],
    n_rooms: int,
    *,
    max_gap_seconds: float = 60.0,
    reset_seconds: float = DEFAULT_RESET_SECONDS,
) -> Motion:
    """Learn dwell times and moves from labelled stays.

    ``stays`` are ``(badge, room_index, start, end)`` with times in seconds:
    the training runs. A stay followed by another of the same badge in a
    different room within ``max_gap_seconds`` is a move. The dwell of a room
    is its total time over the number of times it was left (or its stays,
    when never left), clamped to a sane range.
    """
    time_in = np.zeros(n_rooms)
    left = np.zeros(n_rooms)
    visits = np.zeros(n_rooms)
    counts = np.zeros((n_rooms, n_rooms))
    by_badge: dict[str, list[tuple[float, float, int]]] = {}
    for badge, room, start, end in stays:
        by_badge.setdefault(badge, []).append((start, end, room))
    for sequence in by_badge.values():
        sequence.sort()
        # Consecutive stays in one room (a run split by a gap) are one visit.
        merged: list[list] = []
        for start, end, room in sequence:
            if merged and merged[-1][2] == room and start - merged[-1][1] <= 1.0:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end, room])
        for index, (start, end, room) in enumerate(merged):
            time_in[room] += max(end - start, 0.0)
            visits[room] += 1
            if index + 1 < len(merged):
                next_start, _, next_room = merged[index + 1]
                if next_room != room and next_start - end <= max_gap_seconds:
                    left[room] += 1
                    counts[room, next_room] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        dwell = np.where(
            left > 0,
            time_in / np.maximum(left, 1),
            np.where(visits > 0, time_in / np.maximum(visits, 1), np.nan),
        )
    dwell = np.where(np.isnan(dwell), DEFAULT_DWELL_SECONDS, dwell)
    dwell = np.clip(dwell, MIN_DWELL_SECONDS, MAX_DWELL_SECONDS)
    if n_rooms == 1:
        return Motion(dwell, np.ones((1, 1)), reset_seconds)
    prior = _uniform_moves(n_rooms) * MOVE_PSEUDOCOUNT * (n_rooms - 1)
    moves = counts + prior
    moves /= moves.sum(axis=1, keepdims=True)
    return Motion(dwell, moves, reset_seconds)


def forward_filter(
    posteriors: np.ndarray,
    seconds: np.ndarray,
    class_prior: np.ndarray,
    motion: Motion,
    *,
    initial: np.ndarray | None = None,
    last_seconds: float | None = None,
) -> np.ndarray:
    """Filtered room probabilities for one badge's readings in time order.

    ``posteriors`` (n, rooms) are the classifier's; ``seconds`` (n,) the
    readings' times. ``initial`` and ``last_seconds`` continue a belief
    from an earlier call (the live case); otherwise it starts at the prior.
    """
    n, rooms = posteriors.shape
    prior = np.asarray(class_prior, dtype=float)
    likelihood = np.maximum(posteriors / np.maximum(prior, 1e-9), 0.0) ** EMISSION_POWER
    likelihood /= np.maximum(likelihood.max(axis=1, keepdims=True), 1e-12)
    likelihood = np.maximum(likelihood, LIKELIHOOD_FLOOR)
    out = np.empty((n, rooms))
    belief = prior if initial is None else np.asarray(initial, dtype=float)
    previous = last_seconds
    for step in range(n):
        now = float(seconds[step])
        if previous is None or now - previous > motion.reset_seconds:
            predicted = prior
        else:
            dt = max(now - previous, 0.0)
            stay = np.exp(-dt / motion.dwell_seconds)
            # Stay with probability stay[r], else move as moves[r] says.
            predicted = belief * stay + ((belief * (1.0 - stay)) @ motion.moves)
        updated = predicted * likelihood[step]
        total = updated.sum()
        belief = updated / total if total > 0 else prior
        out[step] = belief
        previous = now
    return out


def filter_sequences(
    posteriors: np.ndarray,
    seconds: np.ndarray,
    badges: Sequence[str],
    class_prior: np.ndarray,
    motion: Motion,
) -> np.ndarray:
    """``forward_filter`` applied per badge, each in time order; rows as given."""
    out = np.empty_like(posteriors, dtype=float)
    order: dict[str, list[int]] = {}
    for index, badge in enumerate(badges):
        order.setdefault(badge, []).append(index)
    for indices in order.values():
        rows = np.asarray(indices)
        rows = rows[np.argsort(seconds[rows], kind="stable")]
        out[rows] = forward_filter(posteriors[rows], seconds[rows], class_prior, motion)
    return out
