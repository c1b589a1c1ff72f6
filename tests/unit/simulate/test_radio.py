"""The radio model: path loss, walls, floors."""

import numpy as np

from stethoscope.simulate.house import demo_house
from stethoscope.simulate.radio import RadioModel, wall_counts


def test_rssi_at_one_metre_and_falling_with_distance():
    radio = RadioModel()
    rssi = radio.mean_rssi(np.array([1.0, 2.0, 4.0, 8.0, 16.0]), 0, 0)
    assert rssi[0] == radio.rssi_at_1m
    assert np.all(np.diff(rssi) < 0)
    # Log-distance: each doubling costs 10 * exponent * log10(2) dB.
    assert np.allclose(np.diff(rssi), -10 * radio.exponent * np.log10(2))


def test_walls_and_floors_attenuate():
    radio = RadioModel()
    open_air = radio.mean_rssi(5.0, 0, 0)
    assert radio.mean_rssi(5.0, 1, 0) == open_air - radio.wall_loss_db
    assert radio.mean_rssi(5.0, 2, 0) < radio.mean_rssi(5.0, 1, 0)
    assert radio.mean_rssi(5.0, 0, 1) == open_air - radio.floor_loss_db
    assert radio.floor_loss_db > radio.wall_loss_db


def test_gateways_hear_near_badges_often_and_far_ones_rarely():
    radio = RadioModel()
    near, edge, far = radio.hear_probability(np.array([-65.0, -88.0, -110.0]))
    assert near > 0.9
    assert 0.4 < edge < 0.6
    assert far < 0.01


def test_walls_counted_between_rooms():
    house = demo_house()
    walls = wall_counts(house, house.beacons)
    beacon = {b.id: i for i, b in enumerate(house.beacons)}
    room = house.index
    # In the beacon's own room: no wall.
    assert walls[room["demo-kitchen"], beacon["bcn-kitchen"]] == 0
    # Kitchen to dining room: the wall between them.
    assert walls[room["demo-kitchen"], beacon["bcn-dining"]] == 1
    # The lounge is two rooms away from the kitchen.
    assert walls[room["demo-kitchen"], beacon["bcn-lounge-tv"]] == 2
    # Further rooms, more walls.
    assert (
        walls[room["demo-bedroom-3"], beacon["bcn-bathroom"]]
        > walls[room["demo-landing"], beacon["bcn-bathroom"]]
    )
