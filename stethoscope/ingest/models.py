"""The readings table: one row per original badge reading."""

import datetime

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, JSONDocument

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
ReadingId = BigInteger().with_variant(Integer(), "sqlite")
# The readings whose beacons ``ix_readings_day_covered`` holds: at most
# 1,200 characters of JSON (ids are ASCII: as many bytes), under 2,700
# bytes as jsonb even for many one-letter ids; 32 MAC addresses take ~850.
# A query must name the same predicate, literally, to use the index.
DAY_COVERED = "length(CAST(beacons AS TEXT)) <= 1200"
DAY_UNCOVERED = "length(CAST(beacons AS TEXT)) > 1200"


class Reading(Base):
    """What a badge heard, as first posted by a gateway.

    ``observed_at`` is when the reading was heard: the gateway's time for a
    buffered (late) upload, otherwise the time we received it. Locating and
    history order readings by it. ``fingerprint`` identifies the badge and
    its beacons (see stethoscope.ingest.schemas.fingerprint) so that late
    uploads can be deduplicated against stored readings.
    """

    __tablename__ = "readings"

    id: Mapped[int] = mapped_column(ReadingId, primary_key=True, autoincrement=True)
    badge_id: Mapped[str] = mapped_column(String(64))
    gateway_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime.datetime]
    observed_at: Mapped[datetime.datetime]
    badge_strength: Mapped[int | None] = mapped_column(SmallInteger)
    beacons: Mapped[dict[str, int]] = mapped_column(JSONDocument)
    fingerprint: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_readings_badge_id_observed_at", "badge_id", "observed_at"),
        Index("ix_readings_observed_at", "observed_at"),
        # The live charts page through one badge's readings by id.
        Index("ix_readings_badge_id_id", "badge_id", "id"),
        # A badge-day (history, stays) read from an index alone: the
        # readings of one badge lie on as many table pages as readings.
        # Beacons is a key column, not INCLUDE, so that SQLite's index
        # covers too. A PostgreSQL index entry holds at most 2,704 bytes:
        # larger documents go to the second index (``DAY_COVERED``).
        Index(
            "ix_readings_day_covered",
            "badge_id",
            "observed_at",
            "id",
            "beacons",
            postgresql_where=text(DAY_COVERED),
            sqlite_where=text(DAY_COVERED),
        ),
        Index(
            "ix_readings_day_uncovered",
            "badge_id",
            "observed_at",
            postgresql_where=text(DAY_UNCOVERED),
            sqlite_where=text(DAY_UNCOVERED),
        ),
    )

    def as_json(self) -> dict:
        return reading_json(
            self.id,
            badge_id=self.badge_id,
            gateway_id=self.gateway_id,
            beacons=self.beacons,
            badge_strength=self.badge_strength,
            observed_at=self.observed_at,
            received_at=self.received_at,
        )


def reading_json(
    reading_id: int,
    *,
    badge_id: str,
    gateway_id: str,
    beacons: dict,
    badge_strength: int | None,
    observed_at: datetime.datetime,
    received_at: datetime.datetime,
    **ignored,
) -> dict:
    """The API form of a reading; gateways know the gateway id as ``pi_id``."""
    return {
        "id": reading_id,
        "badge_id": badge_id,
        "pi_id": gateway_id,
        "beacons": beacons,
        "badge_strength": badge_strength,
        "observed_at": observed_at.isoformat(),
        "received_at": received_at.isoformat(),
    }
