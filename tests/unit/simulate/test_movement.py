"""Badges walk from room to adjacent room, and stay longer in some rooms."""

import itertools

import numpy as np

from stethoscope.simulate.house import demo_house, generated_house
from stethoscope.simulate.traffic import Simulation


def walk(house, badges, steps, seed=0):
    simulation = Simulation(house, badges=badges, seed=seed)
    return list(itertools.islice(simulation.updates(), steps))


def test_badges_only_move_through_doors():
    house = demo_house()
    updates = walk(house, badges=12, steps=3000)
    moves = 0
    for before, after in itertools.pairwise(updates):
        for a, b in zip(before.rooms, after.rooms, strict=True):
            if a != b:
                moves += 1
                assert house.rooms[b].id in house.adjacent[house.rooms[a].id]
    assert moves > 100  # they do walk about


def test_badges_only_move_through_doors_in_the_generated_house():
    house = generated_house(rooms=40, beacons=50)
    updates = walk(house, badges=50, steps=800, seed=2)
    for before, after in itertools.pairwise(updates):
        changed = np.flatnonzero(before.rooms != after.rooms)
        for i in changed:
            a, b = house.rooms[before.rooms[i]], house.rooms[after.rooms[i]]
            assert b.id in house.adjacent[a.id]


def test_positions_stay_inside_the_room():
    house = demo_house()
    for update in walk(house, badges=12, steps=500):
        for room, x, y in zip(update.rooms, update.x, update.y, strict=True):
            assert house.rooms[room].contains(x, y)


def test_long_stays_in_bedrooms_short_ones_in_corridors():
    house = demo_house()
    updates = walk(house, badges=12, steps=6000, seed=4)
    stays = {"bedroom": [], "corridor": []}
    rooms = np.array([u.rooms for u in updates])  # (steps, badges)
    for badge in range(rooms.shape[1]):
        track = rooms[:, badge]
        edges = np.flatnonzero(np.diff(track)) + 1
        # Whole stays only: between two room changes.
        for start, end in itertools.pairwise(edges):
            kind = house.rooms[track[start]].kind
            if kind in stays:
                stays[kind].append(end - start)
    assert stays["bedroom"] and stays["corridor"]
    # In updates of 5 s: minutes in a bedroom, seconds in a corridor.
    assert np.median(stays["bedroom"]) * 5 > 10 * 60
    assert np.median(stays["corridor"]) * 5 < 60
