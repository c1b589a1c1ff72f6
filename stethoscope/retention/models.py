"""Stays kept after their readings are pruned.

Before ``stethoscope-prune`` deletes any reading of a badge-day (the
site's local day, midnight to midnight), it keeps that day's stays as
``GET /badges/{id}/stays`` answered them: one row per stay, with the model
version that produced them and the timezone the day was cut in. The
locating API answers a day that has rows here from them (its readings are
gone, wholly or in part), so a day looked at again after the prune says
what it said before.

Rows are never changed: a day is archived once, when the first of its
readings goes, while the day is still whole.
"""

import datetime

from sqlalchemy import Date, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class ArchivedStay(Base):
    """One stay of a pruned badge-day."""

    __tablename__ = "archived_stays"

    id: Mapped[int] = mapped_column(primary_key=True)
    badge_id: Mapped[str] = mapped_column(String(64))
    # The site's local day the stays were cut from.
    day: Mapped[datetime.date] = mapped_column(Date)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    # The site's zone then: the day's bounds, and the offsets times are shown in.
    timezone: Mapped[str] = mapped_column(String(64))
    room_id: Mapped[str] = mapped_column(String(64))
    room_name: Mapped[str] = mapped_column(String(200))
    # The stay's first and last reading.
    from_at: Mapped[datetime.datetime]
    to_at: Mapped[datetime.datetime]
    readings: Mapped[int]
    # The mean probability of its room.
    confidence: Mapped[float] = mapped_column(Float)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    archived_at: Mapped[datetime.datetime]

    __table_args__ = (
        Index("ix_archived_stays_badge_id_day_from_at", "badge_id", "day", "from_at"),
    )
