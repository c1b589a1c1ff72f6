"""RoomModel: its manifest, the unknown floor, dead beacons, predicting."""

import numpy as np
import pytest
import sklearn

from stethoscope.learning.predictor import DEFAULT_UNKNOWN_FLOOR, RoomModel
from stethoscope.learning.trainer import ALGORITHMS, fit_model
from tests.support.labelled import synthetic_data


def test_the_unknown_floor_and_feature_set_round_trip_through_the_manifest():
    model = fit_model(
        synthetic_data(rooms=2, runs_per_room=2), "logistic", ["room-0", "room-1"]
    )
    model.unknown_floor = 0.4321

    again = RoomModel.from_manifest(model.estimator, model.to_manifest())

    assert again.unknown_floor == 0.4321
    assert again.knows_dead_beacons
    reading = [{"beacon-0": -60, "beacon-1": -80}]
    assert np.array_equal(
        again.predict_proba(reading, ["beacon-0"]),
        model.predict_proba(reading, ["beacon-0"]),
    )


def test_a_manifest_from_before_the_floor_gets_the_documented_default():
    model = fit_model(
        synthetic_data(rooms=2, runs_per_room=2), "logistic", ["room-0", "room-1"]
    )
    manifest = model.to_manifest()
    del manifest["unknown_floor"]

    assert RoomModel.from_manifest(model.estimator, manifest).unknown_floor == (
        DEFAULT_UNKNOWN_FLOOR
    )


def test_a_dead_beacon_changes_what_a_dead_aware_model_hears():
    model = fit_model(
        synthetic_data(rooms=2, runs_per_room=2), "logistic", ["room-0", "room-1"]
    )
    reading = [{"beacon-0": -60, "beacon-1": -80}]

    alive = model.features(reading)
    dead = model.features(reading, ["beacon-0"])

    assert not np.array_equal(alive, dead)
    assert dead[0, model.vocabulary.beacons.index("beacon-0")] == model.vocabulary.floor


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_probabilities_are_the_estimator_s_own(algorithm):
    # Predicting without scikit-learn's per-call checks changes no number.
    rooms = ["room-0", "room-1", "room-2"]
    model = fit_model(synthetic_data(rooms=3, runs_per_room=2), algorithm, rooms)
    if "n_jobs" in model.estimator.get_params():
        # A forest's trees summed by several threads come in any order: two
        # calls of the same estimator may differ in the last bit.
        model.estimator.set_params(n_jobs=1)
    readings = [{"beacon-0": -60, "beacon-1": -80}, {"beacon-2": -71}, {}]

    features = model.features(readings, ["beacon-1"])
    expected = np.zeros((len(readings), len(rooms)))
    columns = [rooms.index(str(room)) for room in model.estimator.classes_]
    expected[:, columns] = model.estimator.predict_proba(features)

    assert np.array_equal(model.predict_proba(readings, ["beacon-1"]), expected)


class ConfigSpy:
    """An estimator that notes scikit-learn's configuration when asked."""

    classes_ = np.asarray(["room-0", "room-1"])

    def __init__(self):
        self.configs = []

    def predict_proba(self, features):
        self.configs.append(sklearn.get_config())
        return np.full((len(features), 2), 0.5)


def test_the_checks_are_skipped_for_the_call_only():
    fitted = fit_model(
        synthetic_data(rooms=2, runs_per_room=2), "logistic", ["room-0", "room-1"]
    )
    spy = ConfigSpy()
    model = RoomModel.from_manifest(spy, fitted.to_manifest())

    model.predict_proba([{"beacon-0": -60}])

    [config] = spy.configs
    assert config["assume_finite"] and config["skip_parameter_validation"]
    assert not sklearn.get_config()["assume_finite"]
    assert not sklearn.get_config()["skip_parameter_validation"]
