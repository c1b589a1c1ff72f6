"""The Locator: raw, bayes, now, history, grains and stays (conftest's house)."""

import copy
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stethoscope.locating.locator import (
    LOW_CONFIDENCE,
    NOTHING_HEARD,
    History,
    Locator,
)

from .conftest import NAMES, ROOMS, heard

beacon_rssi = st.dictionaries(
    st.sampled_from(["beacon-a", "beacon-b", "beacon-c", "stranger"]),
    st.integers(-110, -30),
)


def walk(rooms, rng, *, start=1_000.0, step=5.0):
    """(seconds, beacons) readings of a badge in ``rooms`` (indices), in turn."""
    return [(start + i * step, heard(room, rng)) for i, room in enumerate(rooms)]


def test_raw_is_every_room_highest_first_named(model, rng):
    locator = Locator(model, NAMES)

    raw = locator.raw(heard(1, rng))

    assert [entry.room_id for entry in raw][0] == "b"
    assert sorted(entry.room_id for entry in raw) == list(ROOMS)
    assert {entry.room_id: entry.room_name for entry in raw} == {
        "a": "Attic",
        "b": "Bedroom",
        "c": "c",
    }


@settings(max_examples=40, deadline=None)
@given(beacons=beacon_rssi)
def test_raw_probabilities_sum_to_one_and_are_ordered(model, beacons):
    raw = Locator(model, NAMES).raw(beacons)

    probabilities = [entry.probability for entry in raw]
    assert math.fsum(probabilities) == pytest.approx(1.0, abs=1e-12)
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(isinstance(p, float) for p in probabilities)


def test_bayes_is_raw_times_the_normalised_weights(model, rng):
    locator = Locator(model, NAMES)
    raw = locator.raw(heard(0, rng))
    by_room = {entry.room_id: entry.probability for entry in raw}
    # Strong enough to overturn the raw order: a far more likely than c.
    weight_c = 10 * by_room["a"] / by_room["c"]

    bayes = locator.bayes(raw, {"c": weight_c, "nowhere": 5.0})

    assert bayes[0].room_id == "c"
    weights = {"a": 1.0, "b": 1.0, "c": weight_c}
    total = sum(weights.values())
    assert {e.room_id: e.weight for e in bayes} == pytest.approx(
        {room: w / total for room, w in weights.items()}
    )
    unnormalised = {room: by_room[room] * w for room, w in weights.items()}
    assert {e.room_id: e.probability for e in bayes} == pytest.approx(
        {room: p / sum(unnormalised.values()) for room, p in unnormalised.items()}
    )
    probabilities = [e.probability for e in bayes]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_zero_weight_rules_a_room_out(model, rng):
    locator = Locator(model, NAMES)
    raw = locator.raw(heard(0, rng))

    bayes = locator.bayes(raw, {"a": 0})

    assert bayes[-1].room_id == "a"
    assert bayes[-1].probability == 0.0
    assert math.fsum(e.probability for e in bayes) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("priors", "message"),
    [
        ({"a": -1.0}, "room 'a' must be a number >= 0"),
        ({"b": math.nan}, "room 'b' must be a number >= 0"),
        ({"b": math.inf}, "room 'b' must be a number >= 0"),
        ({"a": True}, "room 'a' must be a number >= 0"),
        ({"a": "1"}, "room 'a' must be a number >= 0"),
        ({"a": 0, "b": 0, "c": 0.0}, "all 0"),
    ],
)
def test_bad_priors_are_refused_naming_the_problem(model, rng, priors, message):
    locator = Locator(model, NAMES)
    raw = locator.raw(heard(0, rng))

    with pytest.raises(ValueError, match=message):
        locator.bayes(raw, priors)
    with pytest.raises(ValueError, match=message):
        locator.now(walk([0], rng), priors)


def test_now_follows_the_badge_and_says_since_when(model, rng):
    readings = walk([0] * 20 + [2] * 20, rng)
    arrived = readings[20][0]

    location = Locator(model, NAMES).now(readings)

    assert location.room_id == "c"
    assert location.room_name == "c"
    assert arrived <= location.since <= readings[-1][0]
    assert location.seconds == readings[-1][0]
    assert not location.unknown and location.reason is None
    assert location.bayes is None
    assert location.smoothed[0].room_id == "c"
    assert location.probability == location.smoothed[0].probability
    assert math.fsum(e.probability for e in location.smoothed) == pytest.approx(1)
    # Public fields are plain Python values, ready for a JSON renderer.
    assert all(isinstance(e.probability, float) for e in location.raw)
    with pytest.raises(dataclasses.FrozenInstanceError):
        location.room_id = "a"  # type: ignore[misc]


def test_now_with_priors_adds_bayes_only(model, rng):
    readings = walk([1] * 5, rng)
    locator = Locator(model, NAMES)

    location = locator.now(readings, {"b": 0.0})

    assert location.bayes[0].room_id != "b"
    assert location.smoothed == locator.now(readings).smoothed


def test_unknown_when_no_beacon_of_the_model_is_heard(model, rng):
    readings = [*walk([0] * 5, rng), (2_000.0, {"stranger": -40})]

    location = Locator(model, NAMES).now(readings)

    assert location.unknown
    assert location.reason == NOTHING_HEARD
    assert location.imposter_beacons == ("stranger",)


def test_a_dead_beacon_heard_alone_is_not_a_known_beacon(model, rng):
    readings = [(1_000.0, {"beacon-a": -50})]

    location = Locator(model, NAMES, dead_beacons={"beacon-a"}).now(readings)

    assert location.unknown and location.reason == NOTHING_HEARD


def test_unknown_below_the_calibrated_floor(model, rng):
    doubtful = copy.copy(model)
    doubtful.unknown_floor = 1.0
    readings = walk([0] * 5, rng)

    location = Locator(doubtful, NAMES).now(readings)

    assert location.unknown
    assert location.reason == LOW_CONFIDENCE
    # The best guess is still given, for people to weigh.
    assert location.room_id == Locator(model, NAMES).now(readings).room_id


def test_imposters_of_the_latest_reading_are_listed(model, rng):
    reading = {**heard(1, rng), "zz-new": -70, "aa-visitor": -90}

    location = Locator(model, NAMES).now([(1_000.0, reading)])

    assert location.imposter_beacons == ("aa-visitor", "zz-new")
    assert not location.unknown


def test_a_dead_beacon_does_not_send_the_badge_away_from_its_room(
    model, naive_model, rng
):
    # In room a with a's beacon dead: b's beacon a room away, c's two.
    in_a = [{b: rssi for b, rssi in heard(0, rng).items() if b != "beacon-a"}]

    aware = Locator(model, NAMES, dead_beacons={"beacon-a", "not-ours"})
    naive = Locator(naive_model, NAMES, dead_beacons={"beacon-a"})

    assert aware.dead_beacons == ("beacon-a",)
    assert aware.raw(in_a[0])[0].room_id == "a"
    aware_a = {e.room_id: e.probability for e in aware.raw(in_a[0])}["a"]
    naive_a = {e.room_id: e.probability for e in naive.raw(in_a[0])}["a"]
    assert aware_a > naive_a
    assert aware.now([(0.0, in_a[0])]).dead_beacons == ("beacon-a",)


def test_a_dead_beacon_heard_anyway_is_still_taken_as_dead(model, rng):
    """Consistent with training: a dead beacon's column is the floor, flagged."""
    reading = heard(0, rng)
    without = {b: rssi for b, rssi in reading.items() if b != "beacon-a"}
    locator = Locator(model, NAMES, dead_beacons={"beacon-a"})

    assert locator.raw(reading) == locator.raw(without)


def test_adjacency_forbids_a_jump_between_rooms_with_no_door(model, rng):
    # a - b - c in a row: no door between a and c.
    doors = {"a": {"b"}, "b": {"c"}}
    readings = walk([0] * 30 + [2], rng, step=1.0)

    free = Locator(model, NAMES).now(readings)
    walled = Locator(model, NAMES, adjacency=doors)

    moves = walled.motion.moves
    assert moves[0, 2] == 0 and moves[2, 0] == 0
    assert np.allclose(moves.sum(axis=1), 1)
    walled_c = {e.room_id: e.probability for e in walled.now(readings).smoothed}
    free_c = {e.room_id: e.probability for e in free.smoothed}
    assert walled_c["c"] < free_c["c"]


def test_no_adjacency_is_no_constraint(model):
    assert np.array_equal(
        Locator(model, NAMES, adjacency={}).motion.moves, model.motion.moves
    )


def test_history_gives_every_reading_its_room(model, rng):
    rooms = [0] * 30 + [1] * 30 + [2] * 30
    readings = walk(rooms, rng)
    locator = Locator(model, NAMES)

    for algorithm in ("raw", "smoothed"):
        history = locator.history(readings, algorithm)

        assert len(history) == len(readings)
        assert history.seconds == tuple(moment for moment, _ in readings)
        assert np.mean(np.asarray(history.room_index) == rooms) > 0.9
        assert all(0 < p <= 1 for p in history.probability)
    bayes = locator.history(readings, "bayes", {"b": 0})
    assert 1 not in bayes.room_index


def test_history_refuses_what_it_cannot_do(model, rng):
    locator = Locator(model, NAMES)

    with pytest.raises(ValueError, match="unknown algorithm"):
        locator.history(walk([0], rng), "psychic")
    with pytest.raises(ValueError, match="bayes algorithm only"):
        locator.history(walk([0], rng), "smoothed", {"a": 1})
    with pytest.raises(ValueError, match="no readings"):
        locator.now([])
    assert len(locator.history([], "smoothed")) == 0


def test_a_day_known_as_a_whole_is_no_worse_than_the_live_filter(model):
    rng = np.random.default_rng(7)
    # Noisy readings (as if worn under a coat): 12 dB of noise on 15 dB steps.
    rooms = np.repeat(rng.integers(0, 3, 40), rng.integers(5, 40, 40)).tolist()
    readings = [
        (i * 5.0, {b: r + int(rng.normal(0, 12)) for b, r in heard(room, rng).items()})
        for i, room in enumerate(rooms)
    ]
    locator = Locator(model, NAMES)

    live = np.asarray(locator.live_history(readings).room_index)
    whole = np.asarray(locator.history(readings, "smoothed").room_index)

    assert np.mean(whole == rooms) >= np.mean(live == rooms)


def histories():
    """Hypothesis: a History of up to 60 readings, irregularly spaced."""
    return st.lists(
        st.tuples(
            st.floats(0.5, 400.0), st.integers(0, len(ROOMS) - 1), st.floats(0.01, 1)
        ),
        max_size=60,
    ).map(
        lambda rows: History(
            "smoothed",
            ROOMS,
            ROOMS,
            tuple(np.cumsum([gap for gap, _, _ in rows]).tolist()),
            tuple(room for _, room, _ in rows),
            tuple(p for _, _, p in rows),
        )
    )


@settings(max_examples=60, deadline=None)
@given(history=histories())
def test_stays_agree_with_the_history(model, history):
    locator = Locator(model, NAMES)

    stays = locator.stays(history)

    assert sum(stay.readings for stay in stays) == len(history)
    position = 0
    for stay in stays:
        members = range(position, position + stay.readings)
        assert {history.room_index[i] for i in members} == {ROOMS.index(stay.room_id)}
        assert stay.from_seconds == history.seconds[members[0]]
        assert stay.to_seconds == history.seconds[members[-1]]
        assert stay.confidence == pytest.approx(
            np.mean([history.probability[i] for i in members])
        )
        position += stay.readings
    for before, after in zip(stays, stays[1:], strict=False):
        gap = after.from_seconds - before.to_seconds
        assert before.room_id != after.room_id or gap > model.motion.reset_seconds


@settings(max_examples=60, deadline=None)
@given(
    history=histories(),
    grain=st.sampled_from([60, 600, 3600]),
    offset=st.floats(0, 500),
)
def test_grains_are_the_most_likely_room_of_each_period(model, history, grain, offset):
    grains = Locator(model, NAMES).grains(history, grain, offset)

    # The same, the slow and obvious way.
    periods: dict[int, dict[int, float]] = {}
    for moment, room, p in zip(
        history.seconds, history.room_index, history.probability, strict=True
    ):
        if moment >= offset:
            mass = periods.setdefault(int((moment - offset) // grain), {})
            mass[room] = mass.get(room, 0.0) + p
    assert [g.start for g in grains] == [offset + k * grain for k in sorted(periods)]
    for found, k in zip(grains, sorted(periods), strict=True):
        best = max(periods[k].values())
        assert periods[k][ROOMS.index(found.room_id)] == pytest.approx(best)
        readings = sum(
            1
            for moment in history.seconds
            if moment >= offset and int((moment - offset) // grain) == k
        )
        assert found.readings == readings
        assert found.probability == pytest.approx(best / readings)


def test_grains_start_at_the_offset(model, rng):
    locator = Locator(model, NAMES)
    offset = 10_000.0
    readings = [(offset - 30.0, heard(2, rng))]
    readings += walk([0] * 12 + [1] * 12, rng, start=offset)  # 5 s apart: 2 min

    grains = locator.grains(locator.history(readings, "smoothed"), 60, offset)

    assert [g.start for g in grains] == [offset, offset + 60]
    assert [g.room_id for g in grains] == ["a", "b"]
    assert [g.readings for g in grains] == [12, 12]
    with pytest.raises(ValueError, match="grain must be one of"):
        locator.grains(locator.history(readings, "raw"), 61, offset)
