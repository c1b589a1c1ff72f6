"""The trainer: grouped folds, sampling, selection, the report, warnings."""

import datetime

import numpy as np
import pytest

from stethoscope.learning.data import labelled_data
from stethoscope.learning.trainer import (
    ALGORITHMS,
    CHOICES,
    LEAVE_ONE_OUT_RUNS,
    MIN_RUNS_PER_ROOM,
    LabelledData,
    TrainingError,
    fit_model,
    grouped_folds,
    make_estimator,
    report,
    sample_within_runs,
    scores,
    sessions,
    train,
    unknown_floor,
)
from tests.support.labelled import synthetic_data


@pytest.mark.parametrize("runs_per_room", [2, 3, 8])
def test_no_training_run_is_ever_on_both_sides_of_a_fold(runs_per_room):
    data = synthetic_data(rooms=4, runs_per_room=runs_per_room)

    folds, description = grouped_folds(data)

    n_runs = 4 * runs_per_room
    expected = (
        "LeaveOneGroupOut" if n_runs <= LEAVE_ONE_OUT_RUNS else "StratifiedGroupKFold"
    )
    assert description["scheme"] == expected
    assert description["groups"].startswith("training session")
    # One badge at a time: every run is a session of its own.
    assert description["sessions"] == n_runs
    tested = []
    for train_index, test_index in folds:
        assert not set(data.runs[train_index]) & set(data.runs[test_index])
        tested.extend(test_index.tolist())
    # Every reading is held out exactly once.
    assert sorted(tested) == list(range(len(data)))


def test_sampling_within_runs_keeps_every_run_and_spreads_evenly():
    runs = np.repeat(np.arange(10), [100, 100, 100, 100, 100, 100, 100, 100, 100, 3])

    kept = sample_within_runs(runs, 100)

    assert set(runs[kept]) == set(range(10))
    assert np.all(np.diff(kept) > 0)
    assert 90 <= len(kept) <= 110
    first_run = kept[runs[kept] == 0]
    assert first_run[0] == 0 and first_run[-1] == 99


def test_sampling_is_a_no_op_under_the_limit():
    runs = np.array([1, 1, 2])

    assert sample_within_runs(runs, 10).tolist() == [0, 1, 2]


def test_scores_weigh_rooms_equally_in_the_balanced_figures():
    rooms = ["a", "b"]
    truth = np.array(["a"] * 9 + ["b"])
    probabilities = np.array([[0.9, 0.1]] * 9 + [[0.9, 0.1]])

    figures = scores(rooms, truth, probabilities)

    assert figures["accuracy"] == pytest.approx(0.9)
    assert figures["balanced_accuracy"] == pytest.approx(0.5)
    assert figures["log_loss"] == pytest.approx((9 * -np.log(0.9) - np.log(0.1)) / 10)
    assert figures["balanced_log_loss"] == pytest.approx(
        (-np.log(0.9) - np.log(0.1)) / 2
    )


def test_report_has_per_room_figures_a_confusion_matrix_and_calibration():
    rooms = ["a", "b"]
    truth = np.array(["a", "a", "b", "b"])
    probabilities = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9]])

    figures = report(rooms, truth, probabilities)

    assert figures["confusion"] == {"rooms": rooms, "matrix": [[1, 1], [0, 2]]}
    assert figures["per_room"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert figures["per_room"]["b"]["recall"] == 1.0
    assert sum(b["count"] for b in figures["calibration"]["bins"]) == 4
    assert 0 <= figures["calibration"]["ece"] <= 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_candidate_learns_well_separated_rooms(algorithm):
    data = synthetic_data(rooms=3, runs_per_room=4)

    result = train(data, algorithm=algorithm)

    assert result.algorithm == algorithm
    assert result.metrics["accuracy"] > 0.9
    assert result.metrics["smoothed"]["accuracy"] > 0.9
    assert result.model.rooms == ("room-0", "room-1", "room-2")
    probabilities = result.model.predict_proba(
        [{"beacon-0": -80, "beacon-1": -54, "beacon-2": -81}]
    )
    assert probabilities.argmax() == 1


def test_auto_selects_the_lowest_balanced_log_loss_and_reports_all():
    data = synthetic_data(rooms=3, runs_per_room=4, noise=9.0)

    result = train(data, algorithm="auto")

    candidates = result.metrics["candidates"]
    assert set(candidates) == set(ALGORITHMS)
    best = min(candidates, key=lambda name: candidates[name]["balanced_log_loss"])
    assert result.algorithm == best
    assert result.metrics["selected_by"] == "balanced log loss"
    assert result.n_runs == 12
    assert result.n_readings == len(data)
    assert result.data_start < result.data_end


def test_compare_with_is_scored_on_the_same_folds_but_not_selected():
    data = synthetic_data(rooms=3, runs_per_room=4)

    result = train(data, algorithm="logistic", compare_with=("knn",))

    assert result.algorithm == "logistic"
    assert set(result.metrics["candidates"]) == {"logistic", "knn"}


def test_warnings_name_thin_rooms_lonely_beacons_and_older_runs():
    data = synthetic_data(rooms=3, runs_per_room=2)
    data.readings[0] = {**data.readings[0], "visitor-phone": -70}
    changed = datetime.datetime.fromtimestamp(data.stays[2][4] + 1, datetime.UTC)

    result = train(data, algorithm="logistic", beacon_changes={"beacon-new": changed})

    text = "\n".join(result.warnings)
    assert f"only 2 training run(s); record at least {MIN_RUNS_PER_ROOM}" in text
    assert "heard in only one training run (visitor-phone)" in text
    assert "beacon beacon-new was first heard" in text
    assert "3 training run(s) ended before it" in text
    assert result.metrics["warnings"] == result.warnings


def test_training_needs_two_rooms_and_two_runs():
    data = synthetic_data(rooms=1, runs_per_room=3)
    with pytest.raises(TrainingError, match="at least two rooms"):
        train(data)
    data = synthetic_data(rooms=2, runs_per_room=1)
    data.runs[:] = 7
    with pytest.raises(TrainingError, match="at least two completed training runs"):
        train(data)


def test_unknown_algorithms_are_refused():
    data = synthetic_data()
    with pytest.raises(TrainingError, match="unknown algorithm"):
        train(data, algorithm="oracle")
    with pytest.raises(TrainingError, match="compare with"):
        train(data, algorithm="knn", compare_with=("oracle",))
    with pytest.raises(ValueError, match="unknown algorithm"):
        make_estimator("oracle", n_readings=1)


def test_a_room_missing_from_a_fold_gets_probability_zero_not_a_crash():
    # Room 2 has a single run: the fold that holds it out cannot know it.
    data = synthetic_data(rooms=3, runs_per_room=3)
    keep = np.flatnonzero(
        (data.rooms != "room-2") | (data.runs == data.runs[data.rooms == "room-2"][0])
    )
    data = data.subset(keep)

    result = train(data, algorithm="forest")

    assert result.metrics["per_room"]["room-2"]["recall"] == 0.0
    assert np.isfinite(result.metrics["balanced_log_loss"])


def test_a_beacon_heard_in_the_training_data_does_not_postdate_it():
    # Imported recordings are older than the registry's first_heard (set
    # by live traffic): the data itself shows the beacon was there.
    data = synthetic_data(rooms=3, runs_per_room=3)
    live = datetime.datetime.fromtimestamp(data.seconds.max() + 3600, datetime.UTC)

    result = train(data, algorithm="logistic", beacon_changes={"beacon-0": live})

    assert not any("first heard" in warning for warning in result.warnings)


CENTRES = {"A": {"b1": -50, "b2": -80}, "B": {"b1": -80, "b2": -50}}


def runs_data(specs, *, readings: int = 30, seed: int = 0) -> LabelledData:
    """One run per ``(room, badge, start)``: a reading a second from
    ``start``, near the room's centre (rooms ``A`` and ``B`` only)."""
    rng = np.random.default_rng(seed)
    rows, rooms, runs, badges, seconds, stays = [], [], [], [], [], []
    for run, (room, badge, start) in enumerate(specs, start=1):
        for step in range(readings):
            rows.append(
                {b: int(v + rng.integers(-3, 4)) for b, v in CENTRES[room].items()}
            )
            rooms.append(room)
            runs.append(run)
            badges.append(badge)
            seconds.append(start + step)
        stays.append((run, badge, room, start, start + readings))
    return labelled_data(rows, rooms, runs, badges, seconds, stays)


def test_runs_of_badges_carried_together_are_one_session():
    data = runs_data(
        [
            ("A", "badge-1", 0),  # carried together with run 2
            ("A", "badge-2", 0),
            ("A", "badge-1", 1000),  # with run 4, though started 5 s later
            ("A", "badge-2", 1005),
            ("B", "badge-3", 1000),  # same time, another room: not together
            ("B", "badge-1", 2000),  # a short visit during run 7's long stay
            ("B", "badge-2", 1990),
        ]
    )
    data.stays[6] = (7, "badge-2", "B", 1990, 2200)

    groups = sessions(data)

    session_of_run = dict(zip(data.runs.tolist(), groups.tolist(), strict=True))
    assert session_of_run[1] == session_of_run[2]
    assert session_of_run[3] == session_of_run[4]
    assert session_of_run[1] != session_of_run[3]
    assert len({session_of_run[run] for run in (3, 5, 6, 7)}) == 4
    assert len(set(groups.tolist())) == 5


def test_no_session_is_ever_on_both_sides_of_a_fold():
    # A bulk start: two badges in one room at one moment, four times a room.
    specs = [
        (room, badge, 1000.0 * visit)
        for visit, room in enumerate("ABABABAB")
        for badge in ("badge-1", "badge-2")
    ]
    data = runs_data(specs)

    folds, description = grouped_folds(data)

    assert description["sessions"] == 8
    groups = sessions(data)
    for train_index, test_index in folds:
        assert not set(groups[train_index]) & set(groups[test_index])
    result = train(data, algorithm="logistic")
    assert result.metrics["cv"]["sessions"] == 8
    assert result.metrics["cv"]["runs"] == 16


@pytest.mark.parametrize("algorithm", CHOICES)
def test_one_session_per_room_is_refused_with_what_to_record(algorithm):
    # A new install's first training: one run in each room, or several
    # badges carried together once through each room.
    for specs in (
        [("A", "badge-1", 0), ("B", "badge-1", 1000)],
        [("A", "badge-1", 0), ("A", "badge-2", 0), ("B", "badge-1", 1000)],
    ):
        with pytest.raises(TrainingError, match="Record at least 2 runs in each room"):
            train(runs_data(specs), algorithm=algorithm)


@pytest.mark.parametrize("algorithm", CHOICES)
def test_a_fold_that_learns_one_room_only_counts_the_other_as_wrong(algorithm):
    # Room B's only run held out leaves a fold with room A alone: it can
    # only say A (the estimators that refuse one class are not asked).
    data = runs_data(
        [("A", "badge-1", 0), ("A", "badge-1", 1000), ("B", "badge-1", 2000)]
    )

    result = train(data, algorithm=algorithm)

    assert result.metrics["per_room"]["B"]["recall"] == 0.0
    assert result.metrics["per_room"]["A"]["recall"] == 1.0
    assert np.isfinite(result.metrics["balanced_log_loss"])
    assert any("room B: a single training session" in w for w in result.warnings)
    assert not any("room A: a single" in w for w in result.warnings)
    # The model refitted on all the data knows both rooms.
    assert result.model.predict_proba([CENTRES["B"]]).argmax() == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_model_fitted_on_one_room_says_that_room(algorithm):
    data = runs_data([("A", "badge-1", 0)])

    model = fit_model(data, algorithm, ["A", "B"])

    assert model.predict_proba([CENTRES["A"], CENTRES["B"]]).tolist() == [
        [1.0, 0.0],
        [1.0, 0.0],
    ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_few_readings_a_run_still_train(algorithm):
    # Fewer readings in a fold than kNN's neighbours or than gradient
    # boosting's validation split can hold.
    data = synthetic_data(rooms=2, runs_per_room=2, readings_per_run=3)

    result = train(data, algorithm=algorithm)

    assert result.model.rooms == ("room-0", "room-1")


def test_the_declared_prior_is_the_one_the_probabilities_carry():
    # Identical readings in both rooms, nine times as many in the lounge:
    # kNN's probabilities carry that 9:1 (no class weights), the others'
    # are balanced. The filter divides by the declared prior, so it must
    # be the prior the probabilities carry.
    rng = np.random.default_rng(0)

    def noisy() -> dict:
        return {
            "b1": int(-60 + rng.integers(-5, 6)),
            "b2": int(-70 + rng.integers(-5, 6)),
        }

    sizes = [("lounge", 300), ("lounge", 300), ("lounge", 300), ("bathroom", 100)]
    readings = [noisy() for _, n in sizes for _ in range(n)]
    rooms = np.asarray([room for room, n in sizes for _ in range(n)], dtype=object)
    runs = np.asarray([run for run, (_, n) in enumerate(sizes) for _ in range(n)])
    data = LabelledData(
        readings,
        rooms,
        runs,
        np.asarray(["badge"] * len(rooms), dtype=object),
        np.arange(len(rooms), dtype=float),
    )
    probe = [noisy() for _ in range(2000)]

    knn = fit_model(data, "knn", ["bathroom", "lounge"])
    logistic = fit_model(data, "logistic", ["bathroom", "lounge"])

    assert knn.class_prior.tolist() == pytest.approx([0.1, 0.9])
    assert knn.predict_proba(probe).mean(axis=0) == pytest.approx([0.1, 0.9], abs=0.05)
    assert logistic.class_prior.tolist() == [0.5, 0.5]
    assert logistic.predict_proba(probe).mean(axis=0) == pytest.approx(
        [0.5, 0.5], abs=0.05
    )
    # Readings that tell the rooms apart not at all leave the filtered
    # belief at the prior: the frequencies are not counted a second time.
    smoothed = knn.smooth(knn.predict_proba(probe[:50]), np.arange(50.0))
    assert smoothed[-1] == pytest.approx([0.1, 0.9], abs=0.05)


def test_training_where_no_beacon_was_heard_is_refused():
    data = synthetic_data(rooms=2, runs_per_room=2)
    data.readings[:] = [{} for _ in data.readings]

    with pytest.raises(TrainingError, match="no beacon was heard"):
        train(data)


def test_the_unknown_floor_is_where_the_top_room_becomes_more_often_right():
    rng = np.random.default_rng(0)
    rooms = ["a", "b"]
    confidence = rng.uniform(0.5, 1.0, 2000)
    # Right with probability rising with confidence, crossing one half at 0.7.
    right = rng.random(2000) < np.clip((confidence - 0.6) * 5, 0, 1)
    truth = np.where(right, "a", "b")
    probabilities = np.column_stack([confidence, 1 - confidence])

    floor = unknown_floor(rooms, truth, probabilities)

    assert 0.65 < floor < 0.75
    below, above = confidence < floor, confidence >= floor
    assert right[below].mean() < 0.5 < right[above].mean()


def test_the_unknown_floor_when_always_right_or_always_wrong():
    probabilities = np.array([[0.6, 0.4], [0.9, 0.1]])

    assert unknown_floor(["a", "b"], np.array(["a", "a"]), probabilities) == 0.6
    assert unknown_floor(["a", "b"], np.array(["b", "b"]), probabilities) == 1.0


def test_training_calibrates_the_floor_and_reports_it():
    result = train(synthetic_data(rooms=3, runs_per_room=3), algorithm="logistic")

    assert 0 < result.model.unknown_floor <= 1
    assert result.metrics["unknown_floor"] == result.model.unknown_floor
    assert result.model.to_manifest()["unknown_floor"] == result.model.unknown_floor


def test_masked_training_copies_teach_what_a_dead_beacon_looks_like():
    data = synthetic_data(rooms=3, runs_per_room=3)
    rooms = ["room-0", "room-1", "room-2"]
    # In room 0 with its own beacon dead: the others as heard there.
    reading = [{"beacon-1": -78, "beacon-2": -80}]

    masked = fit_model(data, "logistic", rooms)
    naive = fit_model(data, "logistic", rooms, feature_set="relative")

    assert masked.estimator.n_features_in_ == naive.estimator.n_features_in_ + 3
    assert (
        masked.predict_proba(reading, ["beacon-0"])[0, 0]
        > naive.predict_proba(reading, ["beacon-0"])[0, 0]
    )
