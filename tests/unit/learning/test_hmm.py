"""The forward filter and the motion it learns from training runs."""

import numpy as np
import pytest

from stethoscope.learning.hmm import (
    EMISSION_POWER,
    MAX_DWELL_SECONDS,
    MIN_DWELL_SECONDS,
    Motion,
    filter_sequences,
    forward_filter,
    learn_motion,
)

UNIFORM = np.array([0.5, 0.5])


def test_learned_dwell_is_time_in_a_room_over_the_times_it_was_left():
    # Badge b: room 0 for 100 s, then room 1 for 50 s, then room 0 for 100 s.
    stays = [("b", 0, 0, 100), ("b", 1, 100, 150), ("b", 0, 150, 250)]

    motion = learn_motion(stays, 2)

    assert motion.dwell_seconds[0] == pytest.approx(200 / 1)
    assert motion.dwell_seconds[1] == pytest.approx(50)


def test_moves_follow_what_was_seen_and_leave_room_for_the_unseen():
    stays = [("b", 0, 0, 60), ("b", 1, 60, 120), ("b", 0, 120, 180)] * 1
    stays += [("c", 0, 0, 60), ("c", 1, 61, 120)]

    motion = learn_motion(stays, 3)

    assert np.allclose(motion.moves.sum(axis=1), 1)
    assert np.all(np.diag(motion.moves) == 0)
    assert motion.moves[0, 1] > motion.moves[0, 2] > 0


def test_stays_far_apart_in_time_are_not_moves():
    motion = learn_motion([("b", 0, 0, 60), ("b", 1, 1000, 1060)], 2)

    # Never left within the gap: dwell is time over visits, moves uniform.
    assert motion.dwell_seconds[0] == pytest.approx(60)
    assert motion.moves[0, 1] == pytest.approx(1.0)


def test_dwell_is_clamped():
    motion = learn_motion([("b", 0, 0, 1), ("b", 1, 1, 10**6)], 2)

    assert motion.dwell_seconds[0] == MIN_DWELL_SECONDS
    assert motion.dwell_seconds[1] == MAX_DWELL_SECONDS


def test_a_single_flicker_does_not_move_the_filtered_room():
    motion = Motion.default(2, dwell_seconds=300)
    posteriors = np.array([[0.9, 0.1]] * 5 + [[0.2, 0.8]] + [[0.9, 0.1]] * 2)
    seconds = np.arange(len(posteriors)) * 5.0

    raw_rooms = posteriors.argmax(axis=1)
    filtered = forward_filter(posteriors, seconds, UNIFORM, motion)

    assert raw_rooms[5] == 1
    assert np.all(filtered.argmax(axis=1) == 0)
    assert np.allclose(filtered.sum(axis=1), 1)


def test_a_lasting_change_is_followed():
    motion = Motion.default(2, dwell_seconds=300)
    posteriors = np.array([[0.9, 0.1]] * 5 + [[0.1, 0.9]] * 5)

    filtered = forward_filter(posteriors, np.arange(10) * 5.0, UNIFORM, motion)

    assert filtered[-1].argmax() == 1


def test_a_long_gap_starts_again_from_the_prior():
    motion = Motion(np.array([1e6, 1e6]), np.array([[0, 1.0], [1.0, 0]]), 300)
    posteriors = np.array([[0.99, 0.01]] * 3 + [[0.3, 0.7]])
    seconds = np.array([0, 5, 10, 10 + 301], dtype=float)

    filtered = forward_filter(posteriors, seconds, UNIFORM, motion)

    # Without the reset, an almost-never-leave motion would keep room 0.
    assert filtered[-1].argmax() == 1
    tempered = np.array([0.3, 0.7]) ** EMISSION_POWER
    assert filtered[-1] == pytest.approx(tempered / tempered.sum())


def test_the_class_prior_is_divided_out_of_the_posterior():
    motion = Motion.default(2)
    # The classifier learned room 0 is 9 times as common and says 0.6: the
    # evidence itself favours room 1.
    filtered = forward_filter(
        np.array([[0.6, 0.4]]), np.array([0.0]), np.array([0.9, 0.1]), motion
    )

    # Prior × (evidence ÷ prior)^power, normalised.
    weights = np.array([0.9, 0.1]) * (
        np.array([0.6 / 0.9, 0.4 / 0.1]) ** EMISSION_POWER
    )
    assert filtered[0] == pytest.approx(weights / weights.sum())
    assert filtered[0, 0] < 0.9


def test_filtering_continues_from_a_given_belief():
    motion = Motion.default(2, dwell_seconds=1000)
    posteriors = np.array([[0.5, 0.5]])

    filtered = forward_filter(
        posteriors,
        np.array([105.0]),
        UNIFORM,
        motion,
        initial=np.array([0.99, 0.01]),
        last_seconds=100.0,
    )

    assert filtered[0].argmax() == 0


def test_sequences_are_filtered_per_badge_in_time_order_rows_in_place():
    motion = Motion.default(2, dwell_seconds=300)
    posteriors = np.array([[0.9, 0.1], [0.1, 0.9], [0.4, 0.6], [0.1, 0.9]])
    seconds = np.array([0.0, 0.0, 5.0, 5.0])
    badges = ["a", "b", "a", "b"]

    filtered = filter_sequences(posteriors, seconds, badges, UNIFORM, motion)

    alone_a = forward_filter(posteriors[[0, 2]], seconds[[0, 2]], UNIFORM, motion)
    alone_b = forward_filter(posteriors[[1, 3]], seconds[[1, 3]], UNIFORM, motion)
    assert np.allclose(filtered[[0, 2]], alone_a)
    assert np.allclose(filtered[[1, 3]], alone_b)


def test_motion_round_trips_through_json():
    motion = learn_motion([("b", 0, 0, 60), ("b", 1, 60, 100)], 2)

    again = Motion.from_json(motion.as_json())

    assert np.allclose(again.dwell_seconds, motion.dwell_seconds)
    assert np.allclose(again.moves, motion.moves)
    assert again.reset_seconds == motion.reset_seconds
