"""The trainer: candidates, cross-validation grouped by training session, a report.

Readings of one training run are nearly copies of each other (one badge, one
spot, seconds apart): a random split of readings puts near-twins on both
sides and reports the accuracy of remembering, not of locating. So are the
runs of badges carried together (a bulk start opens one run per badge, in
one room, at one moment): the runs of one room that overlap in time for most
of their length are one *training session*. Every figure here is
out-of-fold with whole sessions held out (StratifiedGroupKFold;
leave-one-session-out when they are few), and model selection uses those
figures only.

A room with a single session cannot be judged: the fold that holds it out
has nothing of the room left to learn from, so its readings count as wrong
(a fold that learned one room only says that room). That is the honest
figure, and a warning says why; when no room has two sessions, nothing at
all could be judged and training is refused with what to record.

Selection is by **balanced log loss**: the log loss with each room weighing
the same, whatever its number of readings. Log loss is a proper score — it
rewards honest probabilities, which the Bayes step (priors) and the HMM
filter multiply on — where accuracy only looks at the top room. Balancing
it by room keeps the lounge, where residents spend most of the day, from
outvoting the bathroom, the room where a fall matters most; it is the
probabilistic counterpart of balanced accuracy. The candidates are trained
with balanced class weights for the same reason, so their probabilities
are relative to a uniform prior over rooms: the model's ``class_prior`` says
so, and the filter and the Bayes step put real priors back explicitly.
kNN has no class weights: its probabilities carry the training data's room
frequencies, and its ``class_prior`` is those frequencies, so that the
filter, which divides by the prior, does not count them twice.
"""

import datetime
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from threadpoolctl import threadpool_limits

from .features import (
    DEAD_AWARE,
    DEFAULT_FEATURE_SET,
    build_vocabulary,
    features_of,
    mask_one_beacon,
    rssi_matrix,
)
from .hmm import learn_motion
from .predictor import DEFAULT_UNKNOWN_FLOOR, RoomModel

ALGORITHMS = ("knn", "forest", "extra_trees", "boosting", "logistic")
CHOICES = ("auto", *ALGORITHMS)
# Leave-one-session-out up to this many sessions, StratifiedGroupKFold
# above: five folds, or three when there are so many sessions that each
# fold still holds out over a hundred of them.
LEAVE_ONE_OUT_RUNS = 10
FOLDS = 5
MANY_RUNS = 300
FOLDS_WITH_MANY_RUNS = 3
# Readings of one run are so alike that a systematic sample within each run
# loses little: cross-validation sees at most MAX_CV_READINGS of them, the
# final fit MAX_FIT_READINGS. That keeps a million readings in minutes.
MAX_CV_READINGS = 20_000
MAX_FIT_READINGS = 200_000
# Gradient boosting grows one tree per room per round: with many rooms it
# costs minutes where the others cost seconds, and it has not won on any
# data here (docs/benchmarks.md), so "auto" leaves it out above this many
# rooms; --algorithm boosting still trains it.
BOOSTING_MAX_ROOMS = 20
# Warnings: a room needs several runs (places, days) to be learned and
# judged; a beacon heard in one run only is probably a passer-by.
MIN_RUNS_PER_ROOM = 3
# Runs of one room are one session when they overlap for at least this
# share of the longer: badges carried together overlap almost wholly, even
# started or ended a few minutes apart, while residents who merely share
# the lounge for a while do not. Any overlap at all would chain a busy
# room's runs into one session (the simulated 200-badge house: 1,469 runs
# in 145 sessions, one per room; at a half, 763).
SESSION_OVERLAP = 0.5
PROBABILITY_FLOOR = 1e-6
# Dead-beacon augmentation doubles the rows a model is fitted on; beyond
# this many copies the fit time grows for nothing a model of a house needs
# (each beacon is still marked dead in thousands of rows).
MAX_MASKED_COPIES = 100_000
# Degree-2 expansion of the logistic model's inputs up to this many (the
# expansion has about n²/2 columns).
MAX_POLYNOMIAL_FEATURES = 24
CALIBRATION_BINS = 10
# BLAS and OpenMP threads a fit may use. A fit's products are thin
# (readings × a few hundred features): OpenBLAS threads gain little on them
# and spin for their share of every call, and on a shared 2-core machine two
# of them per fit made a logistic fit about ten times slower
# (docs/benchmarks.md "Locating speed", fitting with one BLAS thread).
# Boosting's OpenMP threads spin the same way: its fit took twice the CPU
# beside two busy processes (7.3 s with one thread, 14.1 s with two).
FIT_THREADS = 1


class TrainingError(Exception):
    """The data cannot make a model (too few rooms, runs or beacons); for people."""


@dataclass
class LabelledData:
    """Labelled readings, each with its room, training run, badge and time.

    ``stays`` are the runs as ``(run, badge, room, start, end)`` in epoch
    seconds, from which the filter learns how long badges stay and where
    they go next.
    """

    readings: list[Mapping[str, int]]
    rooms: np.ndarray  # str room id per reading
    runs: np.ndarray  # group (training run id) per reading
    badges: np.ndarray  # str badge id per reading
    seconds: np.ndarray  # float epoch seconds per reading
    stays: list[tuple] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings)

    def subset(self, index: np.ndarray) -> "LabelledData":
        runs = set(self.runs[index].tolist())
        return LabelledData(
            [self.readings[i] for i in index],
            self.rooms[index],
            self.runs[index],
            self.badges[index],
            self.seconds[index],
            [stay for stay in self.stays if stay[0] in runs],
        )


@dataclass
class TrainingResult:
    """A model refitted on all the data, and how well it did in CV."""

    model: RoomModel
    algorithm: str
    # JSON-able: accuracy, balanced_accuracy, log_loss, balanced_log_loss,
    # smoothed{...}, per_room{room: {precision, recall, f1, support}},
    # confusion{rooms, matrix}, calibration{...}, candidates{algorithm:
    # {...}}, cv{...}, selected_by, training_seconds, warnings.
    metrics: dict
    warnings: list[str] = field(default_factory=list)
    n_readings: int = 0
    run_ids: list = field(default_factory=list)
    data_start: datetime.datetime | None = None
    data_end: datetime.datetime | None = None

    @property
    def n_runs(self) -> int:
        return len(self.run_ids)


# The two forests, and what each does its own way. Leaves of ten readings
# or more in the random forest: fully grown trees give 0/1 votes and
# overconfident probabilities (SPHERE: log loss 0.45 at one reading a leaf,
# 0.26 at twenty), which the filter multiplies on.
FORESTS = {
    "forest": (
        RandomForestClassifier,
        {"min_samples_leaf": 10, "class_weight": "balanced_subsample"},
    ),
    "extra_trees": (
        ExtraTreesClassifier,
        {"min_samples_leaf": 5, "class_weight": "balanced"},
    ),
}


def make_estimator(
    algorithm: str, *, n_readings: int, n_features: int = 0, seed: int = 0
):
    """An unfitted candidate. Sizes follow the data: on a million readings
    a forest of deep trees is big and slow for little gain."""
    big = n_readings > 100_000
    if algorithm == "knn":
        return make_pipeline(
            StandardScaler(),
            KNeighborsClassifier(n_neighbors=25, weights="distance"),
        )
    if algorithm in FORESTS:
        forest, own = FORESTS[algorithm]
        return forest(
            n_estimators=100 if big else 200,
            max_features="sqrt",
            n_jobs=-1,
            random_state=seed,
            **own,
        )
    if algorithm == "boosting":
        return HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.1,
            max_leaf_nodes=31,
            l2_regularization=1.0,
            early_stopping=True,
            class_weight="balanced",
            random_state=seed,
        )
    if algorithm == "logistic":
        # Pairwise products and squares of the RSSI let a linear model draw
        # curved room boundaries (SPHERE: +0.6 points raw, +0.5 smoothed,
        # +1.5 balanced); with many features their count explodes, so a
        # large house gets the plain linear model.
        expand = (
            [PolynomialFeatures(2), StandardScaler()]
            if n_features <= MAX_POLYNOMIAL_FEATURES
            else []
        )
        return make_pipeline(
            StandardScaler(),
            *expand,
            LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced"),
        )
    raise ValueError(f"unknown algorithm {algorithm!r} (one of {', '.join(CHOICES)})")


def sample_within_runs(runs: np.ndarray, limit: int) -> np.ndarray:
    """Indices of about ``limit`` readings (sorted), every run kept, evenly
    spread within each run (a run's readings are in time order)."""
    if len(runs) <= limit:
        return np.arange(len(runs))
    share = limit / len(runs)
    _, group = np.unique(runs, return_inverse=True)
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    keep = []
    for start, end in zip(starts, ends, strict=True):
        members = order[start:end]
        count = max(1, round(len(members) * share))
        picks = np.linspace(0, len(members) - 1, count).round().astype(int)
        keep.append(members[np.unique(picks)])
    return np.sort(np.concatenate(keep))


def sessions(data: LabelledData) -> np.ndarray:
    """The training session of each reading (an int): its run, or the first
    of the runs of its room recorded together (``SESSION_OVERLAP``).

    Runs are compared by their spans in ``data.stays``; a run without one
    is a session of its own.
    """
    run_ids, run_of = np.unique(data.runs, return_inverse=True)
    index = {run: i for i, run in enumerate(run_ids.tolist())}
    parent = list(range(len(run_ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_room: dict[str, list[tuple[float, float, int]]] = {}
    for run, _, room, start, end in data.stays:
        if run in index:
            by_room.setdefault(room, []).append((start, end, index[run]))
    for spans in by_room.values():
        spans.sort()
        for position, (start, end, run) in enumerate(spans):
            # Later runs starting before this one ends, in start order.
            for other_start, other_end, other in spans[position + 1 :]:
                if other_start >= end:
                    break
                shared = min(end, other_end) - other_start
                longer = max(end - start, other_end - other_start)
                if shared >= SESSION_OVERLAP * longer:
                    parent[root(other)] = root(run)
    return np.asarray([root(i) for i in range(len(run_ids))])[run_of]


def splitter(rooms: np.ndarray, groups: np.ndarray, seed: int = 0):
    """The grouped CV scheme for these sessions, and its description."""
    n_groups = len(set(groups.tolist()))
    described = {
        "groups": "training session (runs recorded together count as one)",
        "sessions": n_groups,
    }
    if n_groups <= LEAVE_ONE_OUT_RUNS:
        return LeaveOneGroupOut(), {
            "scheme": "LeaveOneGroupOut",
            "folds": n_groups,
            **described,
        }
    folds = min(FOLDS if n_groups <= MANY_RUNS else FOLDS_WITH_MANY_RUNS, n_groups)
    return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed), {
        "scheme": "StratifiedGroupKFold",
        "folds": folds,
        **described,
    }


def grouped_folds(data: LabelledData, seed: int = 0):
    """(train, test) index pairs: no session (so no run) ever on both sides."""
    groups = sessions(data)
    cv, description = splitter(data.rooms, groups, seed)
    with warnings.catch_warnings():
        # "The least populated class has only N members": a room with fewer
        # sessions than folds. Reported as a training warning instead.
        warnings.simplefilter("ignore", UserWarning)
        folds = list(cv.split(np.zeros(len(data)), data.rooms, groups))
    return folds, description


def fit_model(
    data: LabelledData,
    algorithm: str,
    rooms: Sequence[str],
    *,
    seed: int = 0,
    feature_set: str = DEFAULT_FEATURE_SET,
) -> RoomModel:
    """Fit one candidate on ``data``; the model knows all of ``rooms``.

    Data of a single room (a cross-validation fold that holds out every
    other room's sessions) make a model that says that room, whatever it
    hears: all a classifier could learn from them, where some estimators
    refuse one class and others answer in the wrong shape.
    """
    if not any(data.readings):
        raise TrainingError(
            "no beacon was heard in any reading to train on: check that the "
            "beacons are switched on and placed, and that the badges' readings "
            "list what they heard"
        )
    vocabulary = build_vocabulary(data.readings)
    rssi = rssi_matrix(data.readings, vocabulary)
    features = features_of(
        rssi, np.zeros(rssi.shape, dtype=bool), vocabulary, feature_set
    )
    labels = data.rooms
    if feature_set in DEAD_AWARE and len(vocabulary.beacons) > 1:
        # A copy of (at most MAX_MASKED_COPIES of) the readings with one
        # beacon each marked dead: how the model learns to do without one
        # (features module docstring).
        rng = np.random.default_rng(seed)
        copied = np.arange(len(rssi))
        if len(copied) > MAX_MASKED_COPIES:
            copied = np.sort(rng.choice(copied, MAX_MASKED_COPIES, replace=False))
        masked = features_of(
            *mask_one_beacon(rssi[copied], rng), vocabulary, feature_set
        )
        features = np.vstack([features, masked])
        labels = np.concatenate([labels, labels[copied]])
    counts = Counter(data.rooms.tolist())
    if len(counts) < 2:
        estimator = DummyClassifier(strategy="prior")
    else:
        estimator = make_estimator(
            algorithm, n_readings=len(data), n_features=features.shape[1], seed=seed
        )
        _fit_to_size(estimator, algorithm, counts)
    with threadpool_limits(limits=FIT_THREADS):
        estimator.fit(features, labels)
    index = {room: i for i, room in enumerate(rooms)}
    stays = [
        (badge, index[room], start, end) for _, badge, room, start, end in data.stays
    ]
    if algorithm == "knn":
        # No class weights: the neighbours vote with the training data's
        # room frequencies, so those are the prior the filter divides out.
        prior = np.asarray([counts.get(room, 0) for room in rooms], dtype=float)
        class_prior = prior / prior.sum()
    else:
        # Balanced class weights: the probabilities are relative to a
        # uniform prior over rooms (module docstring).
        class_prior = np.full(len(rooms), 1.0 / len(rooms))
    return RoomModel(
        estimator,
        algorithm=algorithm,
        vocabulary=vocabulary,
        feature_set=feature_set,
        rooms=rooms,
        class_prior=class_prior,
        motion=learn_motion(stays, len(rooms)),
    )


def _fit_to_size(estimator, algorithm: str, counts: Counter) -> None:
    """Shrink what small data cannot hold: kNN's neighbours, and gradient
    boosting's early stopping, whose stratified validation split needs two
    readings of every room and room for one of each on its side."""
    n_readings = sum(counts.values())
    if algorithm == "knn":
        neighbours = estimator.named_steps["kneighborsclassifier"]
        neighbours.set_params(n_neighbors=min(neighbours.n_neighbors, n_readings))
    elif algorithm == "boosting":
        held = n_readings * estimator.validation_fraction
        if min(counts.values()) < 2 or held < len(counts):
            estimator.set_params(early_stopping=False)


def scores(rooms: Sequence[str], truth: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, log loss and balanced log loss."""
    index = {room: i for i, room in enumerate(rooms)}
    true_index = np.asarray([index[room] for room in truth])
    predicted = np.asarray(rooms)[probabilities.argmax(axis=1)]
    picked = np.clip(
        probabilities[np.arange(len(truth)), true_index], PROBABILITY_FLOOR, 1
    )
    losses = -np.log(picked)
    counts = np.bincount(true_index, minlength=len(rooms))
    weights = 1.0 / counts[true_index]
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "log_loss": float(losses.mean()),
        "balanced_log_loss": float((losses * weights).sum() / weights.sum()),
    }


def report(rooms: Sequence[str], truth: np.ndarray, probabilities: np.ndarray) -> dict:
    """The full report of out-of-fold predictions: scores, per room,
    confusion matrix and calibration (top-room confidence vs accuracy)."""
    rooms = list(rooms)
    predicted = np.asarray(rooms)[probabilities.argmax(axis=1)]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=rooms, zero_division=0
    )
    confidence = probabilities.max(axis=1)
    correct = predicted == truth
    bins = []
    ece = 0.0
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            bin_confidence = float(confidence[inside].mean())
            bin_accuracy = float(correct[inside].mean())
            ece += inside.mean() * abs(bin_confidence - bin_accuracy)
            bins.append(
                {
                    "from": round(float(low), 2),
                    "to": round(float(high), 2),
                    "confidence": bin_confidence,
                    "accuracy": bin_accuracy,
                    "count": int(inside.sum()),
                }
            )
    index = {room: i for i, room in enumerate(rooms)}
    onehot = np.zeros_like(probabilities)
    onehot[np.arange(len(truth)), [index[room] for room in truth]] = 1.0
    return {
        **scores(rooms, truth, probabilities),
        "per_room": {
            room: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, room in enumerate(rooms)
        },
        "confusion": {
            "rooms": rooms,
            "matrix": confusion_matrix(truth, predicted, labels=rooms).tolist(),
        },
        "calibration": {
            "ece": float(ece),
            "brier": float(((probabilities - onehot) ** 2).sum(axis=1).mean()),
            "bins": bins,
        },
    }


def unknown_floor(
    rooms: Sequence[str], truth: np.ndarray, probabilities: np.ndarray
) -> float:
    """The top probability below which the top room is more likely wrong
    than right, from out-of-fold (smoothed) predictions.

    The share of correct answers is fitted as a non-decreasing function of
    the top probability (isotonic regression: it needs no bins and cannot
    wiggle); the floor is the lowest top probability where that share
    reaches one half. When it reaches it at the lowest probability seen,
    nothing below was observed and the floor is that probability; when it
    never does, no answer is trustworthy and the floor is 1.
    """
    if not len(truth):
        return DEFAULT_UNKNOWN_FLOOR
    confidence = probabilities.max(axis=1)
    correct = np.asarray(rooms, dtype=object)[probabilities.argmax(axis=1)] == truth
    fitted = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(
        confidence, correct.astype(float)
    )
    levels = np.unique(confidence)
    trusted = levels[fitted.predict(levels) >= 0.5]
    return float(trusted.min()) if len(trusted) else 1.0


def cross_validate(
    data: LabelledData,
    algorithm: str,
    rooms: Sequence[str],
    folds,
    *,
    seed: int = 0,
    step: Callable[[], None] = lambda: None,
    feature_set: str = DEFAULT_FEATURE_SET,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold raw and smoothed probabilities of one candidate.

    Each fold's model (vocabulary, estimator and motion alike) sees only its
    training runs; its test readings are filtered per run in time order.
    """
    raw = np.zeros((len(data), len(rooms)))
    smoothed = np.zeros_like(raw)
    for train, test in folds:
        model = fit_model(
            data.subset(train), algorithm, rooms, seed=seed, feature_set=feature_set
        )
        held_out = data.subset(test)
        probabilities = model.predict_proba(held_out.readings)
        raw[test] = probabilities
        # Each held-out run is filtered on its own, from the prior: the runs
        # of a badge before and after it may be in other folds, and a
        # sequence jumping between them would be judged on moves that never
        # happened. Pessimistic at the start of each run, never flattered.
        smoothed[test] = model.smooth_sequences(
            probabilities, held_out.seconds, held_out.runs
        )
        step()
    return raw, smoothed


def data_warnings(
    data: LabelledData,
    beacon_changes: Mapping | None = None,
    groups: np.ndarray | None = None,
) -> list[str]:
    """What makes the model or its figures less trustworthy than they look.

    ``groups`` are the readings' training sessions (``sessions(data)``).
    """
    found = []
    runs_per_room: dict[str, set] = {}
    for room, run in zip(data.rooms.tolist(), data.runs.tolist(), strict=True):
        runs_per_room.setdefault(room, set()).add(run)
    sessions_per_room = _per_room(
        data.rooms, sessions(data) if groups is None else groups
    )
    for room, runs in sorted(runs_per_room.items()):
        if len(runs) < MIN_RUNS_PER_ROOM:
            found.append(
                f"room {room}: only {len(runs)} training run(s); record at least "
                f"{MIN_RUNS_PER_ROOM} (different spots and days) for it to be "
                "learned and judged fairly"
            )
        if len(sessions_per_room[room]) == 1:
            found.append(
                f"room {room}: a single training session (runs recorded together "
                "count as one): cross-validation has nothing of the room left to "
                "learn from when it holds that session out, so its readings count "
                "as wrong; record another run there at another time"
            )
    runs_per_beacon: dict[str, set] = {}
    for reading, run in zip(data.readings, data.runs.tolist(), strict=True):
        for beacon in reading:
            runs_per_beacon.setdefault(beacon, set()).add(run)
    lonely = sorted(b for b, runs in runs_per_beacon.items() if len(runs) == 1)
    if lonely:
        shown = ", ".join(lonely[:10]) + (" …" if len(lonely) > 10 else "")
        found.append(
            f"{len(lonely)} beacon(s) heard in only one training run ({shown}): "
            "a visitor's device or a beacon moved since?"
        )
    if beacon_changes and data.stays:
        # The registry's first_heard is when a live reading first named the
        # beacon; imported recordings may hold it earlier, and a beacon
        # heard in the training data was there by then.
        heard_from: dict[str, float] = {}
        for reading, moment in zip(data.readings, data.seconds.tolist(), strict=True):
            for beacon in reading:
                if moment < heard_from.get(beacon, float("inf")):
                    heard_from[beacon] = moment
        for beacon, changed in sorted(beacon_changes.items()):
            stamp = min(changed.timestamp(), heard_from.get(beacon, float("inf")))
            older = sum(1 for stay in data.stays if stay[4] <= stamp)
            if older:
                found.append(
                    f"beacon {beacon} was first heard at {changed.isoformat()}: "
                    f"{older} training run(s) ended before it; re-record them"
                )
    return found


def _per_room(rooms: np.ndarray, groups: np.ndarray) -> dict[str, set]:
    """The set of ``groups`` of each room."""
    found: dict[str, set] = {}
    for room, group in zip(rooms.tolist(), groups.tolist(), strict=True):
        found.setdefault(room, set()).add(group)
    return found


def train(
    data: LabelledData,
    *,
    algorithm: str = "auto",
    seed: int = 0,
    progress=None,
    beacon_changes: Mapping | None = None,
    max_cv_readings: int = MAX_CV_READINGS,
    max_fit_readings: int = MAX_FIT_READINGS,
    compare_with: Sequence[str] = (),
    feature_set: str = DEFAULT_FEATURE_SET,
) -> TrainingResult:
    """Select a candidate by grouped CV, refit it on all data, report.

    ``progress`` (a tqdm-like object: ``total``, ``update()``) follows the
    folds. ``beacon_changes`` maps beacon ids to when they were installed or
    moved, for the "training data predates a beacon change" warning.
    ``compare_with`` names algorithms to cross-validate on the same folds
    for comparison only (the active model's, for ``--activate``): reported
    in ``metrics["candidates"]``, never selected unless ``algorithm`` is
    "auto". ``feature_set`` is for experiments (``stethoscope-evaluate
    --feature-set``): the default is the one measured best.
    """
    if algorithm not in CHOICES:
        raise TrainingError(
            f"unknown algorithm {algorithm!r} (one of {', '.join(CHOICES)})"
        )
    started = time.perf_counter()
    rooms = sorted(set(data.rooms.tolist()))
    runs = sorted(set(data.runs.tolist()), key=str)
    if len(rooms) < 2:
        raise TrainingError(
            f"training needs completed runs in at least two rooms (found {len(rooms)})"
        )
    if len(runs) < 2:
        raise TrainingError("training needs at least two completed training runs")
    groups = sessions(data)
    if all(len(found) < 2 for found in _per_room(data.rooms, groups).values()):
        # Every fold would hold out a room's only session: every figure
        # would be "wrong", which says nothing about the model.
        raise TrainingError(
            "cross-validation cannot judge any room: it holds out one training "
            "session at a time and learns the room from its other sessions, "
            "and no room has two (runs recorded together, such as badges "
            "carried together, count as one). Record at least 2 runs in each "
            f"room at different times ({MIN_RUNS_PER_ROOM} or more, at "
            "different spots, is better), then train again"
        )
    if algorithm != "auto":
        eligible = (algorithm,)
    elif len(rooms) > BOOSTING_MAX_ROOMS:
        eligible = tuple(name for name in ALGORITHMS if name != "boosting")
    else:
        eligible = ALGORITHMS
    unknown = set(compare_with) - set(ALGORITHMS)
    if unknown:
        raise TrainingError(f"unknown algorithm(s) to compare with: {sorted(unknown)}")
    candidates = (*eligible, *(a for a in compare_with if a not in eligible))
    cv_data = data.subset(sample_within_runs(data.runs, max_cv_readings))
    folds, cv = grouped_folds(cv_data, seed)
    if progress is not None:
        progress.total = len(candidates) * len(folds) + 1
    compared = {}
    best = None
    for name in candidates:
        began = time.perf_counter()
        raw, smoothed = cross_validate(
            cv_data,
            name,
            rooms,
            folds,
            seed=seed,
            feature_set=feature_set,
            step=progress.update if progress is not None else (lambda: None),
        )
        figures = scores(rooms, cv_data.rooms, raw)
        figures["smoothed"] = scores(rooms, cv_data.rooms, smoothed)
        figures["seconds"] = round(time.perf_counter() - began, 2)
        compared[name] = figures
        if name in eligible and (
            best is None
            or figures["balanced_log_loss"] < compared[best[0]]["balanced_log_loss"]
        ):
            best = (name, raw, smoothed)
    chosen, raw, smoothed = best
    fit_data = data.subset(sample_within_runs(data.runs, max_fit_readings))
    fitting = time.perf_counter()
    model = fit_model(fit_data, chosen, rooms, seed=seed, feature_set=feature_set)
    fit_seconds = time.perf_counter() - fitting
    # Live locations are the filter's, so the floor is read off the
    # filter's out-of-fold probabilities.
    model.unknown_floor = unknown_floor(rooms, cv_data.rooms, smoothed)
    if progress is not None:
        progress.update()
    found = data_warnings(data, beacon_changes, groups)
    metrics = report(rooms, cv_data.rooms, raw)
    metrics["smoothed"] = report(rooms, cv_data.rooms, smoothed)
    metrics |= {
        "candidates": compared,
        "cv": cv | {"readings": len(cv_data), "runs": len(set(cv_data.runs.tolist()))},
        "selected_by": "balanced log loss",
        "unknown_floor": model.unknown_floor,
        "fit_readings": len(fit_data),
        "fit_seconds": round(fit_seconds, 2),
        "training_seconds": round(time.perf_counter() - started, 2),
        "warnings": found,
        "room_readings": dict(Counter(data.rooms.tolist())),
    }
    moments = data.seconds
    return TrainingResult(
        model=model,
        algorithm=chosen,
        metrics=metrics,
        warnings=found,
        n_readings=len(data),
        run_ids=runs,
        data_start=_moment(moments.min()) if len(moments) else None,
        data_end=_moment(moments.max()) if len(moments) else None,
    )


def _moment(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(float(seconds), datetime.UTC)
