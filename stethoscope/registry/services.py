"""Gateways and badges as seen by ingest."""

import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from .models import Badge, Gateway


class SeenService:
    """Lists gateways and badges with their traffic and health."""

    def __init__(self, session: Session, tracker, online_seconds: int, clock=utcnow):
        self.session = session
        self.tracker = tracker
        self.online = datetime.timedelta(seconds=online_seconds)
        self._clock = clock

    def gateways(self) -> list[dict]:
        """Every gateway that has posted, most recently seen first."""
        self.tracker.flush()
        now = self._clock()
        rows = self.session.scalars(select(Gateway).order_by(Gateway.last_seen.desc()))
        return [
            {
                "id": g.id,
                "first_seen": g.first_seen.isoformat(),
                "last_seen": g.last_seen.isoformat(),
                "seconds_since_seen": round((now - g.last_seen).total_seconds(), 1),
                "online": now - g.last_seen <= self.online,
                "last_ip": g.last_ip,
                "posts": g.posts,
                "duplicates": g.duplicates,
            }
            for g in rows
        ]

    def badges(self) -> list[dict]:
        """Every badge that has been heard, most recently seen first."""
        self.tracker.flush()
        now = self._clock()
        rows = self.session.scalars(select(Badge).order_by(Badge.last_seen.desc()))
        return [
            {
                "id": b.id,
                "first_seen": b.first_seen.isoformat(),
                "last_seen": b.last_seen.isoformat(),
                "seconds_since_seen": round((now - b.last_seen).total_seconds(), 1),
                "last_gateway_id": b.last_gateway_id,
                "posts": b.posts,
                "duplicates": b.duplicates,
            }
            for b in rows
        ]
