"""The pure parts of the alerts' conditions: durations as messages say
them, the site's day and night, and the settings they read."""

import datetime

import pytest

from stethoscope.alerts.conditions import AlertSettings, how_long, is_day
from stethoscope.config import parse_settings

NOON = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (7.9, "7 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min")],
)
def test_how_long_in_seconds_under_a_minute(seconds, said):
    assert how_long(NOON - datetime.timedelta(seconds=seconds), NOON) == said


def test_a_moment_ahead_of_the_clock_is_no_time_ago():
    assert how_long(NOON + datetime.timedelta(seconds=3), NOON) == "0 s"


@pytest.mark.parametrize(
    ("start", "end", "hour", "day"),
    [(7, 22, 7, True), (7, 22, 22, False), (22, 7, 23, True), (22, 7, 12, False)],
)
def test_the_day_may_wrap_midnight(start, end, hour, day):
    settings = AlertSettings.defaults(day_start_hour=start, night_start_hour=end)
    assert is_day(NOON.replace(hour=hour), settings) is day


def test_silences_may_be_fractions_of_a_minute():
    settings = parse_settings(
        {
            "sqlalchemy.url": "sqlite:///x.sqlite",
            "stethoscope.secret": "s" * 32,
            "stethoscope.alerts.gateway_silent_minutes": "0.1",
            "stethoscope.alerts.beacon_silent_minutes": "2.5",
        },
        environ={},
    )
    alerts = AlertSettings.from_settings(settings)
    assert (alerts.gateway_silent_minutes, alerts.beacon_silent_minutes) == (0.1, 2.5)
    assert alerts.badge_silent_minutes == 30


def test_the_defaults_are_the_declared_settings():
    parsed = parse_settings(
        {"sqlalchemy.url": "sqlite:///x.sqlite", "stethoscope.secret": "s" * 32},
        environ={},
    )
    assert AlertSettings.defaults() == AlertSettings.from_settings(parsed)
    assert AlertSettings.defaults(day_start_hour=6).day_start_hour == 6
