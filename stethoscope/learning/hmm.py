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

from collections.abc import Iterable, Mapping, Sequence
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


def emissions(posteriors: np.ndarray, class_prior: np.ndarray) -> np.ndarray:
    """Each reading's likelihood per room: posterior ÷ class prior, tempered,
    scaled to a maximum of 1 and floored (module docstring)."""
    prior = np.maximum(np.asarray(class_prior, dtype=float), 1e-9)
    likelihood = np.maximum(posteriors / prior, 0.0) ** EMISSION_POWER
    likelihood /= np.maximum(likelihood.max(axis=1, keepdims=True), 1e-12)
    return np.maximum(likelihood, LIKELIHOOD_FLOOR)


def allowed_moves(
    rooms: Sequence[str], adjacency: Mapping[str, Iterable[str]] | None
) -> np.ndarray | None:
    """Which one-step moves a floor plan allows ((rooms, rooms) bool), or None.

    A door goes both ways, so the mapping is made symmetric. A room the
    mapping never names (the registry knows no door of it) is left
    unconstrained rather than sealed: a missing door in the registry must
    not make a room unreachable. None or an empty mapping: no constraint.
    """
    if not adjacency:
        return None
    index = {room: i for i, room in enumerate(rooms)}
    n = len(rooms)
    allowed = np.zeros((n, n), dtype=bool)
    named = np.zeros(n, dtype=bool)
    for room, neighbours in adjacency.items():
        if room not in index:
            continue
        named[index[room]] = True
        for other in neighbours:
            if other in index:
                allowed[index[room], index[other]] = True
                allowed[index[other], index[room]] = True
                named[index[other]] = True
    allowed[~named, :] = True
    allowed[:, ~named] = True
    return allowed


def constrain(motion: Motion, allowed: np.ndarray | None) -> Motion:
    """``motion`` with the moves ``allowed`` forbids at 0, rows renormalised.

    A room with no allowed move keeps a zero row: leaving it is impossible
    in one step, and ``step_matrices`` keeps that mass on staying.
    """
    if allowed is None:
        return motion
    moves = np.where(allowed, motion.moves, 0.0)
    np.fill_diagonal(moves, 0.0)
    total = moves.sum(axis=1, keepdims=True)
    moves = np.divide(moves, total, out=np.zeros_like(moves), where=total > 0)
    return Motion(motion.dwell_seconds, moves, motion.reset_seconds)


# Gaps between readings are quantised to this step, so that a day of readings
# needs one transition matrix per distinct gap, not one per reading. With a
# dwell of at least MIN_DWELL_SECONDS the chance of leaving moves by at most
# 0.25 / 5 = 5 % of itself: far below what the figures can see.
GAP_STEP_SECONDS = 0.5
RESET = -1


def gap_kinds(
    seconds: np.ndarray, motion: Motion, last_seconds: float | None = None
) -> np.ndarray:
    """Per reading, its quantised gap to the reading before (in steps), or
    ``RESET`` when the belief starts afresh from the prior (the first
    reading without ``last_seconds``, or a gap over ``reset_seconds``)."""
    seconds = np.asarray(seconds, dtype=float)
    before = np.empty_like(seconds)
    if len(seconds):
        before[0] = np.nan if last_seconds is None else last_seconds
        before[1:] = seconds[:-1]
    gaps = seconds - before
    with np.errstate(invalid="ignore"):
        kinds = np.round(np.maximum(gaps, 0.0) / GAP_STEP_SECONDS)
        reset = np.isnan(gaps) | (gaps > motion.reset_seconds)
    return np.where(reset, RESET, kinds).astype(np.int64)


def step_matrices(
    kinds: np.ndarray, class_prior: np.ndarray, motion: Motion
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct transition matrices of ``kinds`` and each reading's index
    into them: stay in room r with probability exp(-dt / dwell[r]), else
    move as ``moves[r]`` says (a zero row: stay); a reset jumps to the
    prior from anywhere."""
    distinct, index = np.unique(kinds, return_inverse=True)
    n = len(motion.dwell_seconds)
    prior = np.asarray(class_prior, dtype=float)
    gaps = np.maximum(distinct, 0) * GAP_STEP_SECONDS
    stay = np.exp(-gaps[:, None] / motion.dwell_seconds[None, :])  # (k, n)
    leave = 1.0 - stay
    stuck = 1.0 - motion.moves.sum(axis=1)  # 1 where a room cannot be left
    matrices = leave[:, :, None] * motion.moves[None, :, :]
    diagonal = np.arange(n)
    matrices[:, diagonal, diagonal] += stay + leave * stuck[None, :]
    matrices[distinct == RESET] = np.broadcast_to(prior, (n, n))
    return matrices, index


# Forward and backward without a division per step: each step of either
# recursion is then two numpy calls (the product with the step's matrix
# and the one with its likelihood row) instead of four, and Python's cost
# per call is most of a step's (a day of 17,280 readings at 40 rooms:
# forward–backward ~100 → ~55 ms of CPU; docs/benchmarks.md "Locating
# speed"). A belief is brought back to a sum of 1 every RENORMALISE_STEPS steps; the
# likelihood floor (``emissions``) shrinks it by at most 1e-3 a step, so
# it stays far from the smallest float64 in between, and each row is
# divided by its own sum once, at the end: the same numbers to rounding.
# Inputs that could underflow, or rule out every room (a likelihood of 0
# where the belief is), take the stepwise recursions, which start afresh
# from the prior there.
RENORMALISE_STEPS = 32
# A row summing to less is taken to have lost precision: the stepwise
# recursions answer instead.
_TINY = 1e-200


def forward(
    likelihood: np.ndarray,
    seconds: np.ndarray,
    class_prior: np.ndarray,
    motion: Motion,
    *,
    initial: np.ndarray | None = None,
    last_seconds: float | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Filtered beliefs (n, rooms), the per-step normalisers (n,) and the
    transitions used, for ``backward``. The loop is over readings only: each
    step is one (rooms × rooms) product, everything else is precomputed."""
    prior = np.asarray(class_prior, dtype=float)
    if initial is None:
        last_seconds = None
    transitions = step_matrices(gap_kinds(seconds, motion, last_seconds), prior, motion)
    belief = prior if initial is None else np.asarray(initial, dtype=float)
    likelihood = np.asarray(likelihood, dtype=float)
    found = _forward_unscaled(likelihood, belief, transitions)
    if found is None:
        found = _forward_stepwise(likelihood, belief, prior, transitions)
    alpha, scale = found
    return alpha, scale, transitions


def _forward_unscaled(
    likelihood: np.ndarray, belief: np.ndarray, transitions
) -> tuple[np.ndarray, np.ndarray] | None:
    """``forward``'s (alpha, scale), renormalised every RENORMALISE_STEPS
    steps (the comment above), or None when a row's sum is too small."""
    matrices, index = transitions
    n, rooms = likelihood.shape
    alpha = np.empty((n, rooms))
    # Lists of row views made once: indexing an array in the loop costs
    # about as much as a product.
    rows, rows_likelihood = list(alpha), list(likelihood)
    steps = list(matrices)
    steps = [steps[which] for which in index.tolist()]
    dot, multiply, every = np.dot, np.multiply, RENORMALISE_STEPS
    with np.errstate(all="ignore"):
        for start in range(0, n, every):
            block = slice(start, start + every)
            for row, step, row_likelihood in zip(
                rows[block], steps[block], rows_likelihood[block], strict=True
            ):
                dot(belief, step, out=row)
                multiply(row, row_likelihood, out=row)
                belief = row
            total = belief.sum()
            if not total > _TINY:
                return None
            belief = belief / total
        sums = alpha.sum(axis=1)
    if n and not (np.isfinite(sums).all() and sums.min() > _TINY):
        return None
    # A step's normaliser: its row's sum over that of the belief it came
    # from (the row before, or 1 after a renormalisation and at the start).
    before = np.ones(n)
    before[1:] = sums[:-1]
    before[every::every] = 1.0
    alpha /= sums[:, None]
    return alpha, sums / before


def _forward_stepwise(
    likelihood: np.ndarray, belief: np.ndarray, prior: np.ndarray, transitions
) -> tuple[np.ndarray, np.ndarray]:
    """``forward``'s (alpha, scale) normalised at every step: a step that
    rules out every room starts afresh from the prior."""
    matrices, index = transitions
    n, rooms = likelihood.shape
    alpha = np.empty((n, rooms))
    scale = np.empty(n)
    for step, which in enumerate(index.tolist()):
        row = alpha[step]
        np.dot(belief, matrices[which], out=row)
        row *= likelihood[step]
        total = row.sum()
        if total > 0:
            row /= total
        else:  # every room ruled out (a forbidden move): start afresh
            row[:] = prior
            total = 1.0
        scale[step] = total
        belief = row
    return alpha, scale


def forward_backward(
    likelihood: np.ndarray,
    seconds: np.ndarray,
    class_prior: np.ndarray,
    motion: Motion,
) -> np.ndarray:
    """Smoothed room probabilities (n, rooms) using past and future readings."""
    prior = np.asarray(class_prior, dtype=float)
    transitions = step_matrices(gap_kinds(seconds, motion), prior, motion)
    likelihood = np.asarray(likelihood, dtype=float)
    found = _forward_unscaled(likelihood, prior, transitions)
    if found is not None:
        smoothed = _smoothed_unscaled(found[0], likelihood, transitions)
        if smoothed is not None:
            return smoothed
    alpha, scale = _forward_stepwise(likelihood, prior, prior, transitions)
    return _smoothed_stepwise(alpha, scale, likelihood, transitions)


def _smoothed_unscaled(
    alpha: np.ndarray, likelihood: np.ndarray, transitions
) -> np.ndarray | None:
    """The backward recursion renormalised every RENORMALISE_STEPS steps
    (a positive factor on a row of beta leaves that row of the result as
    it is), combined with ``alpha``; None when a sum is too small."""
    matrices, index = transitions
    n, rooms = alpha.shape
    if n == 0:
        return alpha.copy()
    # beta[t] = matrix[t + 1] @ (likelihood[t + 1] * beta[t + 1]), from the
    # end: the rows t and the step t + 1 they come from, both reversed.
    beta = np.empty_like(alpha)
    beta[-1] = 1.0
    steps = list(matrices)
    steps = [steps[which] for which in index.tolist()]
    rows = list(beta)[-2::-1]
    after = list(zip(steps, likelihood, strict=True))[:0:-1]
    weighted = np.empty(rooms)
    dot, multiply, every = np.dot, np.multiply, RENORMALISE_STEPS
    later = beta[-1]
    with np.errstate(all="ignore"):
        for start in range(0, n - 1, every):
            block = slice(start, start + every)
            for row, (step, row_likelihood) in zip(
                rows[block], after[block], strict=True
            ):
                multiply(row_likelihood, later, out=weighted)
                dot(step, weighted, out=row)
                later = row
            total = later.sum()
            if not total > _TINY:
                return None
            later /= total
        gamma = alpha * beta
        sums = gamma.sum(axis=1)
    if not (np.isfinite(sums).all() and sums.min() > _TINY):
        return None
    gamma /= sums[:, None]
    return gamma


def _smoothed_stepwise(
    alpha: np.ndarray, scale: np.ndarray, likelihood: np.ndarray, transitions
) -> np.ndarray:
    matrices, index = transitions
    beta = np.ones_like(alpha)
    weighted = np.empty(alpha.shape[1])
    kinds = index.tolist()
    for step in range(len(alpha) - 2, -1, -1):
        np.multiply(likelihood[step + 1], beta[step + 1], out=weighted)
        weighted /= scale[step + 1]
        np.dot(matrices[kinds[step + 1]], weighted, out=beta[step])
    gamma = alpha * beta
    return gamma / gamma.sum(axis=1, keepdims=True)


def viterbi(
    likelihood: np.ndarray,
    seconds: np.ndarray,
    class_prior: np.ndarray,
    motion: Motion,
) -> np.ndarray:
    """The single most likely sequence of rooms (n,) given every reading."""
    n, rooms = likelihood.shape
    prior = np.asarray(class_prior, dtype=float)
    matrices, index = step_matrices(gap_kinds(seconds, motion), prior, motion)
    with np.errstate(divide="ignore"):
        log_matrices = np.log(matrices)
        log_likelihood = np.log(likelihood)
    back = np.empty((n, rooms), dtype=np.int64)
    score = np.zeros(rooms)
    for step, which in enumerate(index.tolist()):
        candidates = score[:, None] + log_matrices[which]
        back[step] = candidates.argmax(axis=0)
        score = candidates[back[step], np.arange(rooms)] + log_likelihood[step]
        score -= score.max()
    path = np.empty(n, dtype=np.int64)
    if n:
        path[-1] = int(score.argmax())
        for step in range(n - 1, 0, -1):
            path[step - 1] = back[step, path[step]]
    return path


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
    alpha, _, _ = forward(
        emissions(posteriors, class_prior),
        seconds,
        class_prior,
        motion,
        initial=initial,
        last_seconds=last_seconds,
    )
    return alpha


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
