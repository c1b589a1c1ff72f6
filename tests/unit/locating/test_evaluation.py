"""A model trained on one simulated day locates badges on a fresh day.

The simulator is never the only evidence of accuracy (the SPHERE benchmark
is, in docs/benchmarks.md); this guards the whole chain — features,
trainer, predictor, Locator — against breaking silently.
"""

import datetime

from stethoscope.labels.csvio import LabelledRow
from stethoscope.locating.evaluation import evaluate
from stethoscope.simulate.house import demo_house
from stethoscope.simulate.traffic import DEFAULT_START, labelled_readings


def day(house, *, seed: int, start, hours: float) -> list[LabelledRow]:
    return [
        LabelledRow(line, r.observed_at, r.badge_id, r.room_id, r.beacons)
        for line, r in enumerate(
            labelled_readings(
                house, badges=4, start=start, seconds=hours * 3600, seed=seed
            ),
            start=2,
        )
    ]


def test_a_model_trained_on_a_simulated_day_is_accurate_on_a_fresh_one():
    house = demo_house()
    training = day(house, seed=1, start=DEFAULT_START, hours=3)
    fresh = day(
        house, seed=2, start=DEFAULT_START + datetime.timedelta(days=1), hours=1
    )

    # One algorithm: choosing among the candidates is test_trainer's (and
    # took four-fifths of this test's time).
    result, trained = evaluate(training, fresh, algorithm="logistic")

    assert result["n_test_labelled"] == len(fresh)
    assert result["raw"]["accuracy"] > 0.9
    assert result["raw"]["balanced_accuracy"] > 0.85
    # Smoothing over time helps, it does not just hold its own.
    assert result["smoothed"]["accuracy"] > result["raw"]["accuracy"]
    assert set(result["per_room"]) <= set(trained.model.rooms)
    # Knowing the whole day does at least as well as the live filter, and
    # flaps less than single readings do.
    assert result["history"]["accuracy"] >= result["smoothed"]["accuracy"] - 0.01
    changes = result["room_changes_per_hour"]
    assert changes["history"] < changes["raw"]


def test_a_dead_beacon_is_taken_out_of_the_test_and_reported():
    house = demo_house()
    training = day(house, seed=1, start=DEFAULT_START, hours=2)
    fresh = day(
        house, seed=2, start=DEFAULT_START + datetime.timedelta(days=1), hours=0.5
    )
    beacon = sorted({b for row in fresh for b in row.beacons})[0]

    result, _ = evaluate(
        training, fresh, algorithm="logistic", dead_beacons=[beacon, "no-such"]
    )

    assert result["dead_beacons"] == [beacon]
    assert result["feature_set"] == "masked"
    assert result["history"]["accuracy"] > 0.5
