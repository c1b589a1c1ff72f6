"""Request and response models of the alerts API (docs/api/alerts.md)."""

import datetime
from typing import Any, Literal

from pydantic import Field

from ..schemas import Identifier, Out, Query, QueryInt
from .conditions import ADVICE


class AlertsQuery(Query):
    site: Identifier | None = Field(None, description="Only this site's alerts.")
    state: Literal["open", "cleared", "all"] = "open"
    limit: QueryInt(1, 1000) = Field(
        200, description="At most this many, newest first."
    )


class AlertOut(Out):
    id: int
    site_id: str
    kind: str = Field(description="One of " + ", ".join(ADVICE) + ".")
    subject: str = Field(
        description="The gateway, beacon or badge id; the site's id for model_outdated."
    )
    message: str = Field(description="What is wrong, for people.")
    advice: str = Field(description="What to do about it.")
    opened_at: datetime.datetime
    cleared_at: datetime.datetime | None = Field(
        description="When its condition was found gone; null while open."
    )
    last_checked_at: datetime.datetime
    details: dict[str, Any] = Field(
        description="What the evaluation saw (e.g. last_seen, room_id, since)."
    )
    wearer: str | None = Field(
        None,
        description="Who wears the badge (badge kinds), only for callers who "
        "may view history (staff).",
    )

    @classmethod
    def of(cls, alert, wearer: str | None = None) -> "AlertOut":
        details = dict(alert.details)
        return cls(
            id=alert.id,
            site_id=alert.site_id,
            kind=alert.kind,
            subject=alert.subject,
            message=details.pop("message", ""),
            advice=ADVICE.get(alert.kind, ""),
            opened_at=alert.opened_at,
            cleared_at=alert.cleared_at,
            last_checked_at=alert.last_checked_at,
            details=details,
            wearer=wearer,
        )


class AlertList(Out):
    alerts: list[AlertOut]
