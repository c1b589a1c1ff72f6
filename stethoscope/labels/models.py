"""Training runs: "badge B was in room R from t0 to t1", what models learn from."""

import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, utcnow
from ..registry.models import Room


class TrainingRun(Base):
    """One badge in one room over a time span.

    Open while ``ended_at`` is None. A cancelled run is kept (with
    ``cancelled_at``) but is never training data. The readings of a run are
    the badge's readings with ``observed_at`` in [started_at, ended_at).
    A badge is in at most one open run, and runs of one badge never overlap
    (checked by LabelService under a lock, since SQL cannot say it portably).
    """

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    badge_id: Mapped[str] = mapped_column(String(64))
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"))
    started_at: Mapped[datetime.datetime]
    ended_at: Mapped[datetime.datetime | None]
    cancelled_at: Mapped[datetime.datetime | None]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    # "live" (started from the dashboard or API) or "import" (labelled CSV).
    source: Mapped[str] = mapped_column(String(16), default="live")

    room: Mapped[Room] = relationship()

    __table_args__ = (
        Index("ix_training_runs_badge_id_started_at", "badge_id", "started_at"),
        Index("ix_training_runs_room_id", "room_id"),
        CheckConstraint(
            "ended_at IS NULL OR ended_at > started_at", name="ended_after_start"
        ),
    )

    @property
    def status(self) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        return "open" if self.ended_at is None else "completed"
