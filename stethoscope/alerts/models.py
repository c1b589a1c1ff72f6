"""Alerts and the stays they watch.

An alert is one condition of one subject (a gateway, beacon, badge) of a
site, from when the evaluator first found it (``opened_at``) to when it
first found it gone (``cleared_at``); rows are never deleted, so the
history of a gateway's outages stays readable. At most one alert per
(site, kind, subject) is open: a partial unique index says so to both
databases, under the evaluator's per-site lock.

``alert_stays`` remembers, per badge, the room locating placed it in and
since when, across evaluations: locating's ``since`` reaches back only as
far as its window of readings (two minutes), and a stay of an hour is
seen only by watching it.
"""

import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, JSONDocument


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    # One of stethoscope.alerts.conditions.KINDS.
    kind: Mapped[str] = mapped_column(String(32))
    # The gateway, beacon or badge id (the site's id for the model).
    subject: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime.datetime]
    cleared_at: Mapped[datetime.datetime | None]
    # The last evaluation that found it still so (or cleared it).
    last_checked_at: Mapped[datetime.datetime]
    # What the evaluator saw, e.g. the gateway's last_seen; never a
    # wearer's name (the API adds it for those who may see it).
    details: Mapped[dict] = mapped_column(JSONDocument)

    __table_args__ = (
        Index("ix_alerts_site_id_opened_at", "site_id", "opened_at"),
        Index(
            "uq_alerts_open",
            "site_id",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )


class AlertStay(Base):
    """Where a badge has been since when, as the evaluations saw it."""

    __tablename__ = "alert_stays"

    badge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    room_id: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime.datetime]
    checked_at: Mapped[datetime.datetime]
