"""RoomModel: its manifest, the unknown floor, dead beacons."""

import numpy as np

from stethoscope.learning.predictor import DEFAULT_UNKNOWN_FLOOR, RoomModel
from stethoscope.learning.trainer import fit_model
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
