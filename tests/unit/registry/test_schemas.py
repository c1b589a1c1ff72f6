"""The registry's field types: one check for a JSON body, a form and a CSV cell."""

import pydantic
import pytest

from stethoscope.registry.schemas import (
    BadgeChange,
    BeaconChange,
    RoomChange,
    RoomIn,
    RoomRow,
    SiteFilter,
    SiteIn,
)


def fields(model, data) -> list[str]:
    with pytest.raises(pydantic.ValidationError) as caught:
        model.model_validate(data)
    return [".".join(map(str, e["loc"])) for e in caught.value.errors()]


ROOM = {"id": "hall", "name": "Hall", "site": "oak"}


@pytest.mark.parametrize(
    ("floor", "expected"), [("2", 2), (" -3 ", -3), ("", None), (None, None), (7, 7)]
)
def test_a_floor_from_a_form_or_a_body(floor, expected):
    assert RoomIn.model_validate({**ROOM, "floor": floor}).floor == expected


@pytest.mark.parametrize("floor", ["one", "1.5", 1.5, True, 9999, "-21"])
def test_a_floor_that_is_not_one(floor):
    assert fields(RoomIn, {**ROOM, "floor": floor})[0].startswith("floor")


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [("30", 30), (" 1440 ", 1440), ("", None), (None, None), (1, 1)],
)
def test_a_max_stay_from_a_form_a_cell_or_a_body(minutes, expected):
    room = RoomIn.model_validate({**ROOM, "max_stay_minutes": minutes})
    assert room.max_stay_minutes == expected
    change = RoomChange.model_validate({"max_stay_minutes": minutes})
    assert change.max_stay_minutes == expected
    assert change.model_fields_set == {"max_stay_minutes"}


@pytest.mark.parametrize("minutes", [0, -1, 1441, "1441", "0", 1.5, True, "an hour"])
def test_a_max_stay_out_of_bounds(minutes):
    assert fields(RoomIn, {**ROOM, "max_stay_minutes": minutes}) == ["max_stay_minutes"]
    assert fields(RoomChange, {"max_stay_minutes": minutes}) == ["max_stay_minutes"]


def test_adjacent_rooms_as_a_list_or_a_cell():
    cell = RoomRow.model_validate({**ROOM, "adjacent": "lounge; kitchen;;lounge"})
    listed = RoomIn.model_validate({**ROOM, "adjacent": ["lounge", "kitchen"]})
    assert cell.adjacent == listed.adjacent == ["kitchen", "lounge"]
    assert fields(RoomIn, {**ROOM, "adjacent": ["has space"]}) == ["adjacent.0"]


def test_names_are_trimmed_and_refused_empty_or_with_control_characters():
    assert (
        SiteIn.model_validate({"id": "x", "name": " Oak ", "timezone": "UTC"}).name
        == "Oak"
    )
    for name in ("", "   ", "a\x00b", 5, "x" * 201):
        assert fields(SiteIn, {"id": "x", "name": name, "timezone": "UTC"}) == ["name"]


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "../../etc/passwd", "", 0])
def test_a_timezone_is_an_iana_name(timezone):
    assert fields(SiteIn, {"id": "x", "name": "X", "timezone": timezone}) == [
        "timezone"
    ]


def test_a_change_knows_what_was_left_out():
    assert RoomChange.model_validate({}).model_fields_set == set()
    cleared = RoomChange.model_validate({"floor": None})
    assert "floor" in cleared.model_fields_set and cleared.floor is None
    unplaced = BeaconChange.model_validate({"room": ""})
    assert unplaced.model_fields_set == {"room"} and unplaced.room is None


def test_bodies_are_strict_and_closed():
    assert fields(BadgeChange, {"active": "no"}) == ["active"]
    assert fields(RoomChange, {"colour": "red"}) == ["colour"]


def test_an_import_row_ignores_other_columns():
    assert RoomRow.model_validate({**ROOM, "notes": "by the door"}).id == "hall"


def test_an_empty_site_filter_is_refused():
    assert fields(SiteFilter, {"site": ""}) == ["site"]
    assert SiteFilter.model_validate({}).site is None
