"""A pruned badge-day answered from its archived stays.

Locating asks ``archived_day`` before it reads a day's readings: a day
with archived stays lost readings to ``stethoscope-prune`` (all of them,
or those outside training runs), so what is left cannot say where the
badge was; the stays kept while the day was whole can. Its stays are
answered as they were; its history is those stays as segments: without a
grain each stay's first and last reading (``[time, room]`` twice, once for
a stay of one reading), with a grain the room that most of each period's
readings were in, as live grains have it. Only the smoothed algorithm
made the stays, so raw, Bayes and priors are refused for such a day.
"""

import datetime
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from .models import ArchivedStay


def zone_of(name: str) -> ZoneInfo:
    """The zone ``name``, UTC for one the system no longer knows."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class ArchivedDay:
    """A badge-day's archived stays, in time order."""

    day: datetime.date
    rows: Sequence[ArchivedStay]

    @property
    def zone(self) -> ZoneInfo:
        return zone_of(self.rows[0].timezone)

    def _iso(self, moment: datetime.datetime) -> str:
        return moment.astimezone(self.zone).isoformat()

    def stays(self) -> list[dict]:
        """The stays as the locating API's ``Stay`` fields."""
        return [
            {
                "room_id": row.room_id,
                "room_name": row.room_name,
                "from_": self._iso(row.from_at),
                "to": self._iso(row.to_at),
                "readings": row.readings,
                "confidence": row.confidence,
            }
            for row in self.rows
        ]

    def history(
        self,
        *,
        grain: int | None,
        offset: int,
        algorithm: str,
        return_value: str,
        priors=None,
    ) -> list[tuple[str, str]]:
        """``[[time, room], …]`` of the day from its stays (module docstring)."""
        if priors is not None or algorithm != "smoothed":
            raise ValidationError(
                "priors" if priors is not None else "algorithm",
                f"the readings of {self.day.isoformat()} were pruned: only its "
                "smoothed stays are kept",
            )
        if grain is None:
            points = []
            for row in self.rows:
                room = getattr(row, return_value)
                points.append((self._iso(row.from_at), room))
                if row.to_at != row.from_at:
                    points.append((self._iso(row.to_at), room))
            return points[offset:]
        # In UTC: a period is ``grain`` real seconds, also across a change
        # of the clocks (aware arithmetic in the zone would be wall time).
        start = datetime.datetime.combine(
            self.day, datetime.time(), self.zone
        ).astimezone(datetime.UTC)
        return [
            (self._iso(start + datetime.timedelta(seconds=period * grain)), room)
            for period, room in periods(self.rows, grain, start, return_value)
            if period >= offset
        ]


def periods(
    rows: Sequence[ArchivedStay],
    grain: int,
    start: datetime.datetime,
    return_value: str = "room_id",
) -> list[tuple[int, str]]:
    """(period index, room) of each ``grain``-second period from ``start``
    that a stay reaches: the room with the most of the period's readings,
    a stay's readings taken as spread evenly over it."""
    weight: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    origin = start.timestamp()
    for row in rows:
        first = row.from_at.timestamp() - origin
        last = row.to_at.timestamp() - origin
        room = getattr(row, return_value)
        span = last - first
        for period in range(math.floor(first / grain), math.floor(last / grain) + 1):
            if span <= 0:
                weight[period][room] += row.readings
                continue
            low = max(first, period * grain)
            high = min(last, (period + 1) * grain)
            weight[period][room] += row.readings * max(high - low, 0) / span
    return [
        (period, max(rooms.items(), key=lambda item: item[1])[0])
        for period, rooms in sorted(weight.items())
    ]


def archived_day(
    session: Session, badge_id: str, day: datetime.date | None
) -> ArchivedDay | None:
    """The archived stays of ``badge_id``'s ``day``; None when the day was
    not pruned (or no day was named: today is never archived)."""
    if day is None:
        return None
    rows = session.scalars(
        select(ArchivedStay)
        .where(ArchivedStay.badge_id == badge_id, ArchivedStay.day == day)
        .order_by(ArchivedStay.from_at)
    ).all()
    return ArchivedDay(day, rows) if rows else None
