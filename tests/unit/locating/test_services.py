"""The locating service's pieces that need no database: the day cache, the
times it writes, the request models, the /health member's deadline."""

import datetime
import threading
from zoneinfo import ZoneInfo

import pydantic
import pytest

from stethoscope.locating import schemas
from stethoscope.locating.services import DayCache, LocatingHealth, iso


class TestDayCache:
    def test_keeps_the_most_recently_used(self):
        cache = DayCache(2)
        cache.put("a", "A")
        cache.put("b", "B")
        assert cache.get("a") == "A"  # a is now the newest
        cache.put("c", "C")

        assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
        assert len(cache) == 2

    def test_size_zero_keeps_nothing(self):
        cache = DayCache(0)
        cache.put("a", "A")
        assert cache.get("a") is None

    def test_threads_never_overfill_it(self):
        cache = DayCache(50)

        def fill(start):
            for key in range(start, start + 500):
                cache.put(key, key)
                cache.get(key - 3)

        threads = [threading.Thread(target=fill, args=(n * 1000,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 50


def test_times_are_in_the_sites_clock():
    london = ZoneInfo("Europe/London")
    # 2026-03-29 01:00 GMT: the clocks go forward.
    before = datetime.datetime(2026, 3, 29, 0, 59, tzinfo=datetime.UTC).timestamp()
    assert iso(before, london) == "2026-03-29T00:59:00+00:00"
    assert iso(before + 60, london) == "2026-03-29T02:00:00+01:00"
    moment = datetime.datetime(2026, 7, 1, 12, tzinfo=datetime.UTC)
    assert iso(moment, london) == "2026-07-01T13:00:00+01:00"


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
