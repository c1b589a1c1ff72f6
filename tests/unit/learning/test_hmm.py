"""The forward filter and the motion it learns from training runs."""

import numpy as np
import pytest

from stethoscope.learning.hmm import (
    EMISSION_POWER,
    GAP_STEP_SECONDS,
    MAX_DWELL_SECONDS,
    MIN_DWELL_SECONDS,
    RESET,
    Motion,
    allowed_moves,
    constrain,
    emissions,
    filter_sequences,
    forward,
    forward_backward,
    forward_filter,
    gap_kinds,
    learn_motion,
    step_matrices,
    viterbi,
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


def noisy_walk(seed: int, rooms: int = 4, noise: float = 1.2):
    """A badge's true rooms (dwells of 5 to 40 readings, 5 s apart) and a
    classifier's noisy posteriors about them."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(rng.integers(0, rooms, 30), rng.integers(5, 40, 30))
    logits = rng.normal(0, noise, (len(truth), rooms))
    logits[np.arange(len(truth)), truth] += 1.0
    posteriors = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return truth, posteriors, np.arange(len(truth)) * 5.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_past_and_future_together_beat_the_past_alone(seed):
    truth, posteriors, seconds = noisy_walk(seed)
    prior = np.full(4, 0.25)
    motion = Motion.default(4, dwell_seconds=100)
    likelihood = emissions(posteriors, prior)

    live = forward(likelihood, seconds, prior, motion)[0].argmax(axis=1)
    whole = forward_backward(likelihood, seconds, prior, motion)
    path = viterbi(likelihood, seconds, prior, motion)

    assert np.allclose(whole.sum(axis=1), 1)
    assert np.mean(whole.argmax(axis=1) == truth) >= np.mean(live == truth)
    assert np.mean(path == truth) >= np.mean(live == truth)


def test_forward_backward_of_the_last_reading_is_the_filter():
    _, posteriors, seconds = noisy_walk(3)
    prior = np.full(4, 0.25)
    motion = Motion.default(4)
    likelihood = emissions(posteriors, prior)

    whole = forward_backward(likelihood, seconds, prior, motion)

    assert whole[-1] == pytest.approx(
        forward_filter(posteriors, seconds, prior, motion)[-1]
    )


def test_a_long_gap_separates_what_comes_before_from_what_comes_after():
    _, posteriors, seconds = noisy_walk(4)
    seconds = seconds.copy()
    seconds[50:] += 10_000
    prior = np.full(4, 0.25)
    motion = Motion.default(4)
    likelihood = emissions(posteriors, prior)

    whole = forward_backward(likelihood, seconds, prior, motion)
    before = forward_backward(likelihood[:50], seconds[:50], prior, motion)

    assert np.allclose(whole[:50], before)


def test_gaps_are_quantised_and_a_reset_marked():
    motion = Motion.default(2, dwell_seconds=60)

    kinds = gap_kinds(np.array([0.0, 5.0, 5.2, 10.0, 400.0]), motion)

    step = GAP_STEP_SECONDS
    assert kinds.tolist() == [RESET, round(5 / step), 0, round(4.8 / step), RESET]


def test_step_matrices_are_stochastic_and_a_reset_jumps_to_the_prior():
    motion = learn_motion([("b", 0, 0, 60), ("b", 1, 60, 100), ("b", 2, 100, 300)], 3)
    prior = np.array([0.2, 0.3, 0.5])

    matrices, index = step_matrices(np.array([RESET, 10, 10, 3]), prior, motion)

    assert len(matrices) == 3
    assert index.tolist() == [0, 2, 2, 1]
    assert np.allclose(matrices.sum(axis=2), 1)
    assert np.allclose(matrices[0], prior)
    stay = np.exp(-10 * GAP_STEP_SECONDS / motion.dwell_seconds)
    assert np.diag(matrices[2]) == pytest.approx(stay)


def test_a_door_plan_forbids_one_step_moves_between_rooms_with_no_door():
    rooms = ("hall", "lounge", "bath", "shed")
    # The shed has no known door: left unconstrained.
    allowed = allowed_moves(rooms, {"hall": {"lounge", "bath"}, "nowhere": {"x"}})
    motion = constrain(Motion.default(4), allowed)

    assert allowed[1, 0] and allowed[0, 2]  # doors go both ways
    assert not allowed[1, 2] and not allowed[2, 1]
    assert allowed[3].all() and allowed[:, 3].all()
    assert motion.moves[1, 2] == 0 and motion.moves[2, 1] == 0
    assert np.allclose(motion.moves.sum(axis=1), 1)
    # From certainly in the lounge, one step later the bath is impossible
    # whatever the reading says.
    filtered = forward(
        np.array([[1e-3, 1e-3, 1.0, 1e-3]]),
        np.array([5.0]),
        np.full(4, 0.25),
        motion,
        initial=np.array([0.0, 1.0, 0.0, 0.0]),
        last_seconds=0.0,
    )[0]
    assert filtered[0, 2] == 0.0
    assert allowed_moves(rooms, None) is None
    assert allowed_moves(rooms, {}) is None


def test_a_room_with_no_door_at_all_cannot_be_left_in_one_step():
    allowed = np.array([[False, False], [False, False]])
    motion = constrain(Motion.default(2, dwell_seconds=10), allowed)

    matrices, _ = step_matrices(np.array([20]), np.full(2, 0.5), motion)

    assert np.allclose(matrices[0], np.eye(2))


# -- the recursions are the stepwise definition ---------------------------------


def stepwise_forward(likelihood, seconds, prior, motion, initial=None, last=None):
    """The filter as defined: normalised at every step, a step that rules
    out every room starting afresh from the prior."""
    matrices, index = step_matrices(
        gap_kinds(seconds, motion, None if initial is None else last), prior, motion
    )
    belief = prior if initial is None else initial
    alpha, scale = np.empty_like(likelihood), np.empty(len(likelihood))
    for step, which in enumerate(index):
        row = belief @ matrices[which] * likelihood[step]
        total = row.sum()
        alpha[step], scale[step] = (row / total, total) if total > 0 else (prior, 1)
        belief = alpha[step]
    return alpha, scale, matrices, index


def stepwise_forward_backward(likelihood, seconds, prior, motion):
    alpha, scale, matrices, index = stepwise_forward(likelihood, seconds, prior, motion)
    beta = np.ones_like(alpha)
    for step in range(len(alpha) - 2, -1, -1):
        beta[step] = matrices[index[step + 1]] @ (
            likelihood[step + 1] * beta[step + 1] / scale[step + 1]
        )
    gamma = alpha * beta
    return gamma / gamma.sum(axis=1, keepdims=True)


def random_hmm(seed: int, n: int):
    """A random house and day: 1–40 rooms, doors, gaps of 5 s, jitter,
    silences past the reset, learned-looking motion."""
    rng = np.random.default_rng(seed)
    rooms = int(rng.integers(1, 41))
    prior = rng.dirichlet(np.ones(rooms))
    moves = rng.dirichlet(np.ones(rooms), rooms)
    motion = Motion(rng.uniform(5, 3600, rooms), moves)
    if rooms > 2:
        motion = constrain(motion, rng.random((rooms, rooms)) < 0.3)
    gaps = rng.choice([5.0, 4.8, 5.3, 60.0, 1000.0], n, p=[0.7, 0.1, 0.1, 0.07, 0.03])
    seconds = np.cumsum(gaps)
    posteriors = rng.dirichlet(np.full(rooms, 0.3), n)
    return emissions(posteriors, prior), seconds, prior, motion


@pytest.mark.parametrize(
    ("seed", "n"), [(0, 0), (1, 1), (2, 31), (3, 32), (4, 33), (5, 500), (6, 2000)]
)
def test_the_recursions_are_the_stepwise_definition(seed, n):
    likelihood, seconds, prior, motion = random_hmm(seed, n)

    alpha, scale, _ = forward(likelihood, seconds, prior, motion)
    expected, expected_scale, _, _ = stepwise_forward(
        likelihood, seconds, prior, motion
    )
    smoothed = forward_backward(likelihood, seconds, prior, motion)

    assert alpha.shape == smoothed.shape == (n, len(prior))
    assert np.allclose(alpha, expected, rtol=0, atol=1e-12)
    assert np.allclose(scale, expected_scale, rtol=1e-12, atol=0)
    assert np.allclose(
        smoothed,
        stepwise_forward_backward(likelihood, seconds, prior, motion),
        rtol=0,
        atol=1e-12,
    )


def test_a_continued_filter_is_the_stepwise_definition():
    likelihood, seconds, prior, motion = random_hmm(7, 100)
    initial = np.random.default_rng(7).dirichlet(np.ones(len(prior)))

    alpha, scale, _ = forward(
        likelihood, seconds, prior, motion, initial=initial, last_seconds=0.0
    )
    expected, expected_scale, _, _ = stepwise_forward(
        likelihood, seconds, prior, motion, initial, 0.0
    )

    assert np.allclose(alpha, expected, rtol=0, atol=1e-12)
    assert np.allclose(scale, expected_scale, rtol=1e-12, atol=0)


def test_likelihoods_that_would_underflow_are_followed_step_by_step():
    # No floor, and tiny: 40 steps of 1e-10 leave nothing of a float64.
    likelihood, seconds, prior, motion = random_hmm(8, 100)
    likelihood = likelihood * 1e-10

    smoothed = forward_backward(likelihood, seconds, prior, motion)

    assert np.isfinite(smoothed).all()
    assert np.allclose(
        smoothed,
        stepwise_forward_backward(likelihood, seconds, prior, motion),
        rtol=0,
        atol=1e-12,
    )


def test_a_reading_that_rules_out_every_room_starts_afresh_from_the_prior():
    likelihood, seconds, prior, motion = random_hmm(9, 80)
    likelihood[40] = 0.0

    alpha, scale, _ = forward(likelihood, seconds, prior, motion)

    assert alpha[40] == pytest.approx(prior)
    assert scale[40] == 1.0
    expected, _, _, _ = stepwise_forward(likelihood, seconds, prior, motion)
    assert np.allclose(alpha, expected, rtol=0, atol=1e-12)
