"""Gateways and badges as seen by ingest."""

import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from .activity import Tally
from .models import Badge, Gateway


class SeenService:
    """Lists gateways and badges with their traffic and health.

    What this process counted since its last flush is added to the stored
    rows, so a page never lags behind this process; other processes' counts
    appear within their flush interval. Reading never writes.
    """

    def __init__(self, session: Session, tracker, online_seconds: int, clock=utcnow):
        self.session = session
        self.tracker = tracker
        self.online = datetime.timedelta(seconds=online_seconds)
        self._clock = clock

    def gateways(self) -> list[dict]:
        """Every gateway that has posted, most recently seen first."""
        pending, _ = self.tracker.pending()
        tallies = self._merge(Gateway, "last_ip", pending)
        now = self._clock()
        return [
            {
                "id": key,
                **self._times(t, now),
                "online": now - t.last_seen <= self.online,
                "last_ip": t.last_source,
                "posts": t.posts,
                "duplicates": t.duplicates,
            }
            for key, t in tallies
        ]

    def badges(self) -> list[dict]:
        """Every badge that has been heard, most recently seen first."""
        _, pending = self.tracker.pending()
        tallies = self._merge(Badge, "last_gateway_id", pending)
        now = self._clock()
        return [
            {
                "id": key,
                **self._times(t, now),
                "last_gateway_id": t.last_source,
                "posts": t.posts,
                "duplicates": t.duplicates,
            }
            for key, t in tallies
        ]

    def _merge(self, model, source: str, pending: dict[str, Tally]):
        tallies = {
            row.id: Tally(
                row.first_seen,
                row.last_seen,
                getattr(row, source),
                row.posts,
                row.duplicates,
            )
            # Rows an admin described before the device was ever heard
            # are the registry's business, not traffic.
            for row in self.session.scalars(
                select(model).where(model.last_seen.is_not(None))
            )
        }
        for key, tally in pending.items():
            if key in tallies:
                tallies[key].add(tally)
            else:
                tallies[key] = tally
        return sorted(tallies.items(), key=lambda item: item[1].last_seen, reverse=True)

    @staticmethod
    def _times(tally: Tally, now) -> dict:
        return {
            "first_seen": tally.first_seen.isoformat(),
            "last_seen": tally.last_seen.isoformat(),
            "seconds_since_seen": round((now - tally.last_seen).total_seconds(), 1),
        }
