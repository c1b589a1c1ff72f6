"""A small house for the Locator: rooms a, b, c in a row, one beacon each.

Each room's beacon is loudest in it, and the others fade with distance
(15 dB a room), with noise: what a badge hears walking a corridor. Models
are fitted by the trainer's own ``fit_model``, once per test session.
"""

import numpy as np
import pytest

from stethoscope.learning.data import labelled_data
from stethoscope.learning.trainer import fit_model

ROOMS = ("a", "b", "c")
NAMES = {"a": "Attic", "b": "Bedroom"}  # c has no name: its id is shown


def heard(room: int, rng: np.random.Generator) -> dict[str, int]:
    return {
        f"beacon-{other}": int(round(-50 - 15 * abs(i - room) + rng.normal(0, 3)))
        for i, other in enumerate(ROOMS)
    }


def training_data(seed: int = 0):
    """Four 60-reading runs per room, a second apart, runs a day apart."""
    rng = np.random.default_rng(seed)
    readings, rooms, runs, badges, seconds, stays = [], [], [], [], [], []
    for run in range(4 * len(ROOMS)):
        room = run % len(ROOMS)
        start = run * 86_400.0
        for step in range(60):
            readings.append(heard(room, rng))
            rooms.append(ROOMS[room])
            runs.append(run)
            badges.append(f"badge-{run % 2}")
            seconds.append(start + step)
        stays.append((run, f"badge-{run % 2}", ROOMS[room], start, start + 60))
    return labelled_data(readings, rooms, runs, badges, seconds, stays)


@pytest.fixture(scope="session")
def model():
    """Trained with dead-beacon flags (the default feature set)."""
    return fit_model(training_data(), "logistic", list(ROOMS))


@pytest.fixture(scope="session")
def naive_model():
    """Trained without them: a dead beacon is only "not heard" to it."""
    return fit_model(training_data(), "logistic", list(ROOMS), feature_set="relative")


@pytest.fixture
def rng():
    return np.random.default_rng(1)
