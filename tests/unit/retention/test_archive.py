"""retention.archive: a pruned day's stays and history from its archived rows."""

import datetime

import pytest

from stethoscope.errors import ValidationError
from stethoscope.retention.archive import ArchivedDay, periods, zone_of
from stethoscope.retention.models import ArchivedStay

DAY = datetime.date(2026, 3, 29)  # London's clocks go forward at 01:00 GMT
UTC = datetime.UTC


def stay(room, first, last, readings, zone="Europe/London"):
    """An archived stay of ``room`` from ``first`` to ``last`` (UTC times)."""
    return ArchivedStay(
        badge_id="b1",
        day=DAY,
        site_id="rose",
        timezone=zone,
        room_id=room,
        room_name=room.title(),
        from_at=first,
        to_at=last,
        readings=readings,
        confidence=0.9,
        model_version_id=1,
    )


def at(hour, minute=0):
    return datetime.datetime(2026, 3, 29, hour, minute, tzinfo=UTC)


ROWS = [
    stay("kitchen", at(0), at(6, 55), 84),  # 00:00 GMT to 07:55 BST
    stay("lounge", at(7), at(14, 55), 96),
    stay("hall", at(15), at(22, 55), 96),
]


def test_stays_in_the_sites_clock():
    stays = ArchivedDay(DAY, ROWS).stays()

    assert [s["room_id"] for s in stays] == ["kitchen", "lounge", "hall"]
    assert stays[0]["from_"] == "2026-03-29T00:00:00+00:00"
    assert stays[1]["from_"] == "2026-03-29T08:00:00+01:00"
    assert stays[2]["to"] == "2026-03-29T23:55:00+01:00"
    assert [s["readings"] for s in stays] == [84, 96, 96]


def test_history_without_a_grain_is_each_stays_ends():
    day = ArchivedDay(DAY, [*ROWS, stay("kitchen", at(23), at(23), 1)])

    points = day.history(
        grain=None, offset=0, algorithm="smoothed", return_value="room_name"
    )

    assert points[:2] == [
        ("2026-03-29T00:00:00+00:00", "Kitchen"),
        ("2026-03-29T07:55:00+01:00", "Kitchen"),
    ]
    # A stay of one reading is one point.
    assert points[-1] == ("2026-03-30T00:00:00+01:00", "Kitchen")
    assert len(points) == 7
    offset = day.history(
        grain=None, offset=5, algorithm="smoothed", return_value="room_name"
    )
    assert offset == points[5:]


def test_hourly_history_of_a_23_hour_day():
    hourly = ArchivedDay(DAY, ROWS).history(
        grain=3600, offset=0, algorithm="smoothed", return_value="room_id"
    )

    assert len(hourly) == 23
    assert hourly[0] == ("2026-03-29T00:00:00+00:00", "kitchen")
    assert hourly[1] == ("2026-03-29T02:00:00+01:00", "kitchen")
    assert [room for _, room in hourly].count("kitchen") == 7
    assert hourly[7] == ("2026-03-29T08:00:00+01:00", "lounge")
    assert hourly[-1] == ("2026-03-29T23:00:00+01:00", "hall")


def test_a_period_goes_to_the_room_with_most_of_its_readings():
    start = at(0)
    rows = [
        stay("kitchen", at(0), at(0, 20), 5),  # a third of the first hour
        stay("lounge", at(0, 25), at(1, 35), 15),  # 35 of its 70 min in hour 0
    ]

    assert periods(rows, 3600, start) == [(0, "lounge"), (1, "lounge")]
    # Its last reading, at 00:20, opens the third ten minutes.
    assert periods(rows[:1], 600, start) == [
        (0, "kitchen"),
        (1, "kitchen"),
        (2, "kitchen"),
    ]


@pytest.mark.parametrize(
    ("options", "field"),
    [({"algorithm": "raw"}, "algorithm"), ({"priors": [("hall", 2.0)]}, "priors")],
)
def test_only_the_smoothed_algorithm_was_kept(options, field):
    day = ArchivedDay(DAY, ROWS)
    kwargs = {"algorithm": "smoothed", **options}

    with pytest.raises(ValidationError) as refused:
        day.history(grain=None, offset=0, return_value="room_id", **kwargs)

    assert refused.value.field == field
    assert "2026-03-29 were pruned" in str(refused.value)


def test_an_unknown_zone_is_utc():
    assert str(zone_of("Mars/Olympus_Mons")) == "UTC"
    day = ArchivedDay(DAY, [stay("hall", at(9), at(10), 13, zone="Nowhere/Else")])
    assert day.stays()[0]["from_"] == "2026-03-29T09:00:00+00:00"
