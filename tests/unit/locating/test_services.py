"""The locating service's pieces that need no database: the day cache, the
times it writes, the request models, the /health member's deadline."""

import datetime
import sys
import threading
import tracemalloc
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pydantic
import pytest

from stethoscope.locating import schemas
from stethoscope.locating.locator import History
from stethoscope.locating.services import (
    Day,
    DayCache,
    LocatingHealth,
    _day_readings,
    _epoch_seconds,
    _utc,
    iso,
    local_times,
)


def a_day(readings: int, zone: str = "Europe/London") -> Day:
    """A finished day of ``readings`` as locating makes one: floats from
    numpy (each its own object), room indexes, probabilities."""
    rng = np.random.default_rng(readings)
    start = 1_790_000_000.0
    return Day(
        History(
            algorithm="smoothed",
            rooms=("kitchen", "lounge"),
            room_names=("Kitchen", "Lounge"),
            seconds=tuple((start + 5.0 * np.arange(readings)).tolist()),
            room_index=tuple(rng.integers(0, 2, readings).tolist()),
            probability=tuple(rng.uniform(0.3, 1, readings).tolist()),
        ),
        ZoneInfo(zone),
    )


class TestDayCache:
    def test_keeps_the_most_recently_used(self):
        cache = DayCache(2)
        a, b, c = a_day(10), a_day(11), a_day(12)
        cache.put("a", a)
        cache.put("b", b)
        assert cache.get("a") is a  # a is now the newest
        cache.put("c", c)

        assert (cache.get("a"), cache.get("b"), cache.get("c")) == (a, None, c)
        assert len(cache) == 2
        assert cache.nbytes == a.nbytes + c.nbytes

    def test_size_zero_keeps_nothing(self):
        for cache in (DayCache(0), DayCache(10, max_bytes=0)):
            day = a_day(10)
            cache.put("a", day)
            cache.keep(day, ("stays",), b"[]")
            assert cache.get("a") is None
            assert (len(cache), cache.nbytes, day.bodies) == (0, 0, {})

    def test_bounded_by_bytes_not_only_by_days(self):
        one = a_day(17_280).nbytes
        cache = DayCache(512, max_bytes=int(2.5 * one))
        days = [a_day(17_280) for _ in range(4)]
        for i, day in enumerate(days):
            cache.put(i, day)

        # Two full days fit in two and a half days' bytes; the oldest left.
        assert [cache.get(i) is day for i, day in enumerate(days)] == [
            False,
            False,
            True,
            True,
        ]
        assert cache.nbytes == 2 * one <= cache.max_bytes
        # A day bigger than all the room there is is not kept at all.
        cache.put("huge", a_day(3 * 17_280))
        assert (cache.get("huge"), len(cache), cache.nbytes) == (None, 0, 0)

    def test_bodies_count_and_leave_with_their_day(self):
        old, new = a_day(1000), a_day(1000)
        body = b"[" + b'["2026-12-06T00:00:00+00:00","kitchen"],' * 2000 + b"]"
        cache = DayCache(10, max_bytes=old.nbytes + new.nbytes + len(body) // 2)
        cache.put("old", old)
        cache.put("new", new)
        assert len(cache) == 2

        cache.keep(new, ("history", None, 0, "room_id"), body)

        # The body made the newest day bigger: the oldest went for it.
        assert cache.get("old") is None
        assert cache.get("new").bodies == {("history", None, 0, "room_id"): body}
        assert cache.nbytes == new.nbytes
        assert new.nbytes - a_day(1000).nbytes == sys.getsizeof(body)
        # A day no longer kept keeps no body either.
        cache.keep(old, ("stays",), b"[]")
        assert old.bodies == {}

    def test_times_count_once_made(self):
        day = a_day(500)
        before = day.nbytes
        times = day.times
        assert day.nbytes == before + sys.getsizeof(times) + sum(
            sys.getsizeof(time) for time in times
        )

    def test_a_days_bytes_are_what_python_holds(self):
        # What tracemalloc sees a finished day's history and times take,
        # against the estimate the cache counts with (a body is its bytes).
        assert a_day(10).times  # what first uses keep is not a day's
        tracemalloc.start()
        try:
            day = a_day(17_280)
            times = day.times
            held, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert 0.97 < day.nbytes / held < 1.03
        # With its history body: about the 3.7 MB the docs say (short ids here).
        day.bodies["x"] = orjson.dumps([(time, "kitchen") for time in times])
        assert 3.2e6 < day.nbytes < 3.8e6

    def test_threads_never_overfill_it(self):
        days = [a_day(100 + n % 7) for n in range(40)]
        limit = sum(day.nbytes for day in days[:20])
        cache = DayCache(50, max_bytes=limit)

        def fill(start):
            for key in range(start, start + 500):
                day = days[key % 40]
                cache.put(key, Day(day.history, day.zone))
                cache.keep(cache.get(key - 1) or day, ("stays",), b"[]" * (key % 5))
                cache.get(key - 3)

        threads = [threading.Thread(target=fill, args=(n * 1000,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        kept = cache.days()
        assert 0 < len(kept) <= 50
        assert cache.nbytes == sum(day.nbytes for day in kept) <= limit


def test_times_are_in_the_sites_clock():
    london = ZoneInfo("Europe/London")
    # 2026-03-29 01:00 GMT: the clocks go forward.
    before = datetime.datetime(2026, 3, 29, 0, 59, tzinfo=datetime.UTC).timestamp()
    assert iso(before, london) == "2026-03-29T00:59:00+00:00"
    assert iso(before + 60, london) == "2026-03-29T02:00:00+01:00"
    moment = datetime.datetime(2026, 7, 1, 12, tzinfo=datetime.UTC)
    assert iso(moment, london) == "2026-07-01T13:00:00+01:00"


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/London", "2026-03-29"),  # 23 hours
        ("Europe/London", "2026-10-25"),  # 25 hours
        ("Europe/London", "2026-12-06"),
        ("Asia/Kolkata", "2026-12-06"),  # +05:30
        ("America/St_Johns", "2026-11-01"),  # -02:30 → -03:30
        ("Europe/Amsterdam", "1930-06-01"),  # +00:20 (local mean time)
        ("UTC", "2026-12-06"),
    ],
)
def test_a_days_times_at_once_are_each_time_in_the_sites_clock(zone, day):
    zone = ZoneInfo(zone)
    start = datetime.datetime.combine(
        datetime.date.fromisoformat(day), datetime.time(), zone
    ).timestamp()
    rng = np.random.default_rng(0)
    # Whole seconds, whole milliseconds, microseconds, and fractions that
    # round half to even or up into the next second.
    seconds = np.sort(start + rng.uniform(0, 86_400, 3000))
    seconds[:500] = np.round(seconds[:500])
    seconds[500:1000] = np.round(seconds[500:1000], 3)
    seconds[1000:1010] = np.floor(seconds[1000:1010]) + 0.9999996
    seconds[1010:1020] = np.floor(seconds[1010:1020]) + 0.0000005
    seconds = sorted(seconds.tolist())

    assert local_times(seconds, zone) == tuple(iso(s, zone) for s in seconds)
    assert local_times([], zone) == ()


def test_a_days_rows_are_read_as_each_row_would_be():
    texts = ['{"b-1": -60, "b-2": -71}', "{}", '{"b-3": -90}']
    sqlite = ["2026-12-06 00:00:00.000000", "2026-12-06 00:00:05.123456"]
    sqlite.append("2026-12-06 00:00:10")
    postgresql = [_utc(text) for text in sqlite]
    postgresql[1] = postgresql[1].astimezone(ZoneInfo("Asia/Kolkata"))

    for times in (sqlite, postgresql):
        assert _day_readings(list(zip(times, texts, strict=True))) == [
            (_utc(time).timestamp(), orjson.loads(text))
            for time, text in zip(times, texts, strict=True)
        ]
    assert _day_readings([]) == []
    # Text with an offset is none of SQLite's: read one at a time, as before.
    odd = ["2026-12-06T01:00:00+01:00"]
    assert _epoch_seconds(odd) == [_utc(odd[0]).timestamp()]


class TestModels:
    def test_priors(self):
        body = schemas.LocationBody.model_validate(
            {"priors": [["kitchen", 2], ["hall", 0.5]]}
        )
        assert body.priors == [("kitchen", 2.0), ("hall", 0.5)]

    @pytest.mark.parametrize(
        ("priors", "where"),
        [
            ([["kitchen", -0.1]], ("priors", 0, 1)),
            ([["kitchen", None]], ("priors", 0, 1)),
            ([["", 1]], ("priors", 0, 0)),
            ([["kitchen", 1, 2]], ("priors", 0)),
            ([["hall", 1], ["hall", 1]], ("priors",)),
        ],
    )
    def test_bad_priors(self, priors, where):
        with pytest.raises(pydantic.ValidationError) as caught:
            schemas.LocationBody.model_validate({"priors": priors})
        assert caught.value.errors()[0]["loc"] == where

    def test_history_query_from_text(self):
        query = schemas.HistoryQuery.model_validate(
            {"date": "2026-03-29", "grain": "600", "offset": "4"}
        )
        assert (query.date, query.grain, query.offset) == (
            datetime.date(2026, 3, 29),
            600,
            4,
        )
        assert (query.algorithm, query.return_value) == (None, "room_id")

    @pytest.mark.parametrize(
        "value", ["2026-02-30", "2026-03-29T00:00", "20260329", "２０２６-03-29"]
    )
    def test_a_date_is_a_plain_calendar_date(self, value):
        with pytest.raises(pydantic.ValidationError):
            schemas.HistoryQuery.model_validate({"date": value})

    def test_the_body_is_strict(self):
        with pytest.raises(pydantic.ValidationError):
            schemas.HistoryBody.model_validate({"grain": "600"})
        assert schemas.HistoryBody.model_validate({"grain": 600}).grain == 600

    def test_a_stay_says_from(self):
        stay = schemas.Stay(
            room_id="a", room_name="A", from_="t0", to="t1", readings=2, confidence=1
        )
        assert stay.model_dump(by_alias=True)["from"] == "t0"


class _Stuck:
    """A registry whose database never answers (until released)."""

    def __init__(self):
        self.release = threading.Event()

    def __getitem__(self, key):
        self.release.wait(5)
        raise KeyError(key)


def test_health_does_not_wait_for_a_stuck_database():
    member = LocatingHealth(dead_seconds=1800, deadline_s=0.05)
    stuck = _Stuck()
    try:
        assert member(stuck) == {"status": "unavailable", "sites": {}}
        # A second check waits for the same probe, not a new one.
        assert member(stuck) == {"status": "unavailable", "sites": {}}
        assert member._out is not None
    finally:
        stuck.release.set()
