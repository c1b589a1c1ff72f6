"""Offline scoring: headline figures, per room, room changes per hour."""

import numpy as np
import pytest

from stethoscope.learning.evaluation import changes_per_hour, headline, per_room


def test_changes_are_counted_per_badge_over_its_own_time():
    rooms = ["a", "a", "b", "x", "a", "b", "b", "a"]
    badges = ["1", "1", "1", "2", "1", "2", "2", "2"]
    seconds = np.array([0, 600, 1200, 0, 1800, 600, 1200, 1800], dtype=float)

    rate = changes_per_hour(rooms, badges, seconds)

    # Badge 1: a a b a (2 changes in 30 min); badge 2: x b b a (2 in 30 min).
    assert rate == pytest.approx((2 + 2) / 1.0)


def test_no_time_no_rate():
    assert changes_per_hour(["a"], ["1"], np.array([5.0])) is None


def test_headline_and_per_room():
    truth = np.array(["a", "a", "b", "b"], dtype=object)
    predicted = np.array(["a", "b", "b", "b"], dtype=object)

    figures = headline(truth, predicted)
    rooms = per_room(truth, {"raw": predicted})

    assert figures == {"accuracy": 0.75, "balanced_accuracy": 0.75}
    assert rooms["a"]["raw"]["recall"] == 0.5
    assert rooms["b"]["support"] == 2
    assert headline(truth[:0], predicted[:0])["accuracy"] is None
