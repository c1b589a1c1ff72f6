"""The trainer: grouped folds, sampling, selection, the report, warnings."""

import datetime

import numpy as np
import pytest

from stethoscope.learning.trainer import (
    ALGORITHMS,
    LEAVE_ONE_OUT_RUNS,
    MIN_RUNS_PER_ROOM,
    TrainingError,
    grouped_folds,
    make_estimator,
    report,
    sample_within_runs,
    scores,
    train,
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
    assert description["groups"] == "training run"
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
