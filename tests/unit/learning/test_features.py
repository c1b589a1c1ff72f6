"""Readings to feature vectors: vocabulary, floor, relative features, imposters."""

import numpy as np
import pytest

from stethoscope.learning.features import (
    FLOOR_MARGIN_DB,
    LOWEST_FLOOR,
    Vocabulary,
    build_vocabulary,
    feature_matrix,
    feature_names,
    imposters,
    mask_one_beacon,
    rssi_matrix,
)


def test_vocabulary_is_every_beacon_heard_sorted_with_a_floor_below_the_weakest():
    vocabulary = build_vocabulary([{"b": -60, "a": -70}, {"c": -91}, {}])

    assert vocabulary.beacons == ("a", "b", "c")
    assert vocabulary.floor == -91 - FLOOR_MARGIN_DB


def test_the_floor_never_goes_below_what_a_reading_can_hold():
    assert build_vocabulary([{"a": -125}]).floor == LOWEST_FLOOR


def test_a_vocabulary_needs_a_beacon():
    with pytest.raises(ValueError, match="no beacon"):
        build_vocabulary([{}, {}])


def test_rssi_matrix_puts_the_floor_where_a_beacon_was_not_heard():
    vocabulary = Vocabulary(("a", "b", "c"), -100.0)

    matrix = rssi_matrix([{"a": -50, "c": -70}, {"b": -60, "zz": -40}], vocabulary)

    assert matrix.tolist() == [[-50, -100, -70], [-100, -60, -100]]
    assert matrix.dtype == np.float32


def test_rssi_matrix_is_each_reading_placed_in_turn():
    """Built all at once, the matrix is what placing each beacon of each
    reading gives: unknown beacons dropped, the floor where weaker."""
    rng = np.random.default_rng(3)
    beacons = [f"beacon-{i}" for i in range(30)]
    vocabulary = Vocabulary(tuple(sorted(beacons[:25])), -105.0)
    readings = [
        {
            beacons[i]: int(rng.integers(-128, -30))
            for i in rng.choice(30, rng.integers(0, 12), replace=False)
        }
        for _ in range(500)
    ]
    column = {beacon: i for i, beacon in enumerate(vocabulary.beacons)}
    expected = np.full((500, 25), -105.0, dtype=np.float32)
    for row, reading in enumerate(readings):
        for beacon, rssi in reading.items():
            if beacon in column:
                expected[row, column[beacon]] = max(rssi, -105.0)

    matrix = rssi_matrix(readings, vocabulary)

    assert matrix.dtype == np.float32
    assert np.array_equal(matrix, expected)
    assert rssi_matrix([], vocabulary).shape == (0, 25)
    assert rssi_matrix([{}, {"zz": -40}], vocabulary).tolist() == [[-105.0] * 25] * 2


def test_a_beacon_heard_weaker_than_the_floor_is_at_the_floor():
    """Not below it: no level of absence the model never saw in training."""
    vocabulary = build_vocabulary([{"a": -80, "b": -90}])

    matrix = rssi_matrix([{"a": -120, "b": -70}], vocabulary)
    features = feature_matrix([{"a": -120, "b": -70}], vocabulary, "relative")

    assert matrix.tolist() == [[vocabulary.floor, -70]]
    assert features[0, -1] == 1  # heard: b only


def test_relative_features_are_differences_from_the_strongest_and_a_count():
    vocabulary = Vocabulary(("a", "b"), -100.0)

    matrix = feature_matrix([{"a": -50, "b": -65}, {"b": -70}], vocabulary, "relative")

    assert matrix.tolist() == [
        [-50, -65, 0, -15, 2],
        [-100, -70, -30, 0, 1],
    ]
    assert feature_names(vocabulary, "relative") == [
        "rssi:a",
        "rssi:b",
        "relative:a",
        "relative:b",
        "heard",
    ]


def test_masked_features_flag_dead_beacons_and_put_them_at_the_floor():
    vocabulary = Vocabulary(("a", "b"), -100.0)
    reading = [{"a": -50, "b": -65}]

    alive = feature_matrix(reading, vocabulary, "masked")
    dead_b = feature_matrix(reading, vocabulary, "masked", dead={"b", "elsewhere"})

    relative = feature_matrix(reading, vocabulary, "relative")
    assert alive.tolist() == [[*relative[0].tolist(), 0, 0]]
    assert dead_b.tolist() == [[-50, -100, 0, -50, 1, 0, 1]]
    assert feature_names(vocabulary, "masked")[-2:] == ["dead:a", "dead:b"]


def test_one_random_beacon_per_row_is_masked_for_training():
    rssi = np.full((200, 3), -60, dtype=np.float32)

    same, dead = mask_one_beacon(rssi, np.random.default_rng(0))

    assert same is rssi
    assert dead.sum(axis=1).tolist() == [1] * 200
    assert set(dead.argmax(axis=1).tolist()) == {0, 1, 2}


def test_the_rssi_feature_set_is_the_matrix_alone():
    vocabulary = Vocabulary(("a",), -100.0)

    assert feature_matrix([{"a": -42}], vocabulary, "rssi").tolist() == [[-42]]
    assert feature_names(vocabulary, "rssi") == ["rssi:a"]


def test_an_unknown_feature_set_is_refused():
    with pytest.raises(ValueError, match="unknown feature set"):
        feature_matrix([{"a": -1}], Vocabulary(("a",), -100.0), "magic")


def test_imposters_are_the_beacons_outside_the_vocabulary():
    vocabulary = Vocabulary(("a", "b"), -100.0)

    assert imposters({"b": -1, "z": -2, "x": -3}, vocabulary) == ["x", "z"]
    assert imposters({"a": -1}, vocabulary) == []


def test_a_vocabulary_round_trips_through_json():
    vocabulary = Vocabulary(("a", "b"), -101.0)

    assert Vocabulary.from_json(vocabulary.as_json()) == vocabulary
