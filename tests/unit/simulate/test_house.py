"""The simulated houses: rooms, doors, devices inside their rooms."""

import dataclasses

import numpy as np
import pytest

from stethoscope.ingest.schemas import IDENTIFIER
from stethoscope.simulate.house import (
    CORRIDOR,
    House,
    Room,
    demo_house,
    generated_house,
    house_by_name,
)


def connected(house: House) -> bool:
    seen, todo = set(), [house.rooms[0].id]
    while todo:
        room = todo.pop()
        if room not in seen:
            seen.add(room)
            todo.extend(house.adjacent[room])
    return len(seen) == len(house.rooms)


def test_demo_house_is_a_small_care_home():
    house = demo_house()
    assert len(house.rooms) == 9
    assert {room.floor for room in house.rooms} == {0, 1}
    assert len(house.beacons) == 10
    assert len(house.gateways) == 4
    assert {"bedroom", "lounge", "dining", "kitchen", "bathroom", "corridor"} == {
        room.kind for room in house.rooms
    }
    assert connected(house)
    # The stairs: the hall and the landing are the only door between floors.
    between = [
        (a, b)
        for a, b in house.doors
        if house.rooms[house.index[a]].floor != house.rooms[house.index[b]].floor
    ]
    assert between == [("demo-hall", "demo-landing")]


@pytest.mark.parametrize("rooms, beacons", [(40, 50), (12, 8), (3, 5), (70, 90)])
def test_generated_house_has_what_was_asked(rooms, beacons):
    house = generated_house(rooms=rooms, beacons=beacons, seed=3)
    assert len(house.rooms) == rooms
    assert len(house.beacons) == beacons
    assert house.gateways
    assert connected(house)
    # Every room but the corridors opens onto a corridor.
    for room in house.rooms:
        if room.kind != CORRIDOR:
            kinds = {house.rooms[house.index[o]].kind for o in house.adjacent[room.id]}
            assert kinds == {CORRIDOR}
    # With enough beacons every room has one.
    placed = {beacon.room_id for beacon in house.beacons}
    assert len(placed) == min(rooms, beacons)


def test_generated_rooms_on_a_floor_do_not_overlap():
    house = generated_house(rooms=40, beacons=50)
    for floor in {room.floor for room in house.rooms}:
        boxes = [r for r in house.rooms if r.floor == floor]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
                overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
                assert overlap_x <= 0 or overlap_y <= 0, (a.id, b.id)


def test_generated_house_is_the_same_for_a_seed():
    assert generated_house(seed=5).beacons == generated_house(seed=5).beacons


@pytest.mark.parametrize("name", ["demo", "generated"])
def test_every_id_is_one_ingest_accepts(name):
    house = house_by_name(name)
    ids = [
        *(room.id for room in house.rooms),
        *(beacon.id for beacon in house.beacons),
        *(gateway.id for gateway in house.gateways),
        *house.badge_ids(250),
    ]
    assert all(IDENTIFIER.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_badge_ids_do_not_depend_on_how_many():
    house = demo_house()
    assert house.badge_ids(3) == house.badge_ids(12)[:3]


def test_room_at_finds_rooms_and_the_outside():
    house = demo_house()
    where = house.room_at(0, np.array([1.0, 14.0, 30.0]), np.array([1.0, 6.0, 1.0]))
    assert [house.rooms[i].id if i >= 0 else None for i in where] == [
        "demo-lounge",
        "demo-hall",
        None,
    ]


def test_a_device_outside_its_room_is_refused():
    house = demo_house()
    astray = dataclasses.replace(house.beacons[0], x=100.0)
    with pytest.raises(ValueError, match="not inside"):
        House("x", "X", "UTC", house.rooms, house.doors, [astray], [], "b-", 1)


def test_a_room_must_be_a_rectangle():
    with pytest.raises(ValueError):
        Room("r", "R", 0, 1, 1, 1, 2, "lounge")
