"""Deleting readings older than a cut-off, except those training runs hold.

Readings say where residents were, so they are kept no longer than they
are of use; training data is the exception: a reading inside a training
run (its badge, ``started_at`` to ``ended_at``, an open run to now) is
what models learn from, and stays. A cancelled run is never training data
and keeps nothing.

Before any reading of a badge-day goes, that day's stays are kept
(``retention/models.py``): ``stays`` (given by the caller: the locating
service, see stethoscope-prune) computes them from the whole day, as
``GET /badges/{id}/stays`` answers them, and they are stored with the
model version that made them, so the day's stays and history still answer
after its readings are gone (``retention/archive.py``). A day is archived
once, by the first batch that reads one of its readings to delete (from
the whole day, so also when that batch stops before deleting it); a badge at no
site, or at a site without an active model, has no stays to keep.

Why batches: one ``DELETE`` of a month of readings (millions of rows)
would hold its locks for as long as it runs: on SQLite the one write lock
of the whole database, so every gateway's post waits behind it (and after
``busy_timeout`` gets a 503); on PostgreSQL the rows' locks and one huge
transaction whose dead rows autovacuum can clean only at the end. So the
readings go at most ``batch_size`` at a time, each batch its own short
transaction, committed before the next begins: a writer waits at most one
batch (on SQLite, a batch bounded by time, with a rest after it: see
RetentionService).
Each batch first reads, outside any write transaction, the next readings
to go and computes the stays of their days not yet archived (a day's
prediction is the slow part, and must not hold SQLite's write lock),

    SELECT id, badge_id, observed_at, its site FROM readings
    WHERE observed_at < :cutoff AND (observed_at, id) > (:after)
      AND NOT EXISTS (a run of its badge that holds it)
    ORDER BY observed_at, id LIMIT :limit

which walks ``ix_readings_observed_at`` from where the last batch
stopped (so the readings kept for runs are read past once, not once per
batch) and never reads a reading newer than the cut-off; then, in one
write transaction, stores those stays and deletes the readings by id, the
cut-off and the training runs asked again: a run committed before a
batch's write began protects its readings from that batch on.
"""

import contextlib
import datetime
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import and_, delete, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session

from ..audit.services import AuditService
from ..db import Database, utcnow
from ..ingest.models import Reading
from ..labels.models import TrainingRun
from ..registry.models import Badge, Gateway, Site
from .archive import zone_of
from .models import ArchivedStay

DEFAULT_BATCH_SIZE = 5_000
# How long a batch's write transaction deletes on SQLite before it commits:
# a server's writer waits for the database's one write lock that long, then
# for the rest of the busy handler's current sleep (see RetentionService).
SQLITE_WRITE_BUDGET_S = 0.02
# Readings per DELETE when a batch is bounded by time: the budget is looked
# at between statements, so a batch may overrun it by one statement.
IDS_PER_TIMED_STATEMENT = 250
IDS_PER_STATEMENT = 10_000


class Stay(Protocol):
    """A stay as the locating API gives it (``locating.schemas.Stay``)."""

    room_id: str
    room_name: str
    from_: str
    to: str
    readings: int
    confidence: float


class DayStays(Protocol):
    def __call__(
        self, session: Session, badge_id: str, site_id: str, day: datetime.date
    ) -> tuple[int, Sequence[Stay]] | None:
        """The stays of the badge's ``day`` at ``site_id`` and the id of
        the model version that made them; None when there are none to
        keep (no active model)."""


# A badge-day: (badge_id, the site's local day).
BadgeDay = tuple[str, datetime.date]


@dataclass
class PruneResult:
    """What a prune did (or, dry, would do)."""

    cutoff: datetime.datetime
    dry_run: bool
    # Readings older than the cut-off that no run holds: deleted, or to be.
    deleted: int = 0
    # Readings older than the cut-off kept because a training run holds them.
    kept_for_training_runs: int = 0
    batches: int = 0
    seconds: float = 0.0
    # The batches' write transactions: all together and the longest.
    writing_seconds: float = 0.0
    longest_write_seconds: float = 0.0
    # Badge-days whose stays were archived, and how many stays they had.
    days_archived: int = 0
    stays_archived: int = 0
    # Badge-days that lost readings with no stays to keep (no site, or no
    # active model at the site).
    days_without_stays: int = 0


def _held_by_a_run():
    """SQL: a training run of the reading's badge holds the reading."""
    return exists().where(
        TrainingRun.badge_id == Reading.badge_id,
        TrainingRun.cancelled_at.is_(None),
        TrainingRun.started_at <= Reading.observed_at,
        or_(
            TrainingRun.ended_at.is_(None),
            TrainingRun.ended_at >= Reading.observed_at,
        ),
    )


class RetentionService:
    """Prunes old readings in short transactions of its own.

    Not joined to a request's transaction: the point is to commit batch by
    batch. ``actor`` and ``actor_type`` name who pruned in the audit log.
    ``write_budget`` bounds a batch's write transaction in seconds: it stops
    deleting (between statements of IDS_PER_TIMED_STATEMENT readings) and
    commits once it has written that long, and the next batch reads about
    as many readings as this one could delete; ``pause`` is the rest
    between batches. Defaults: on SQLite SQLITE_WRITE_BUDGET_S and a rest
    as long as the batch's write transaction (plus 10 ms); on PostgreSQL no
    bound and no rest.
    """

    def __init__(
        self,
        database: Database,
        *,
        actor: str,
        actor_type: str,
        stays: DayStays | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
        pause: float | None = None,
        write_budget: float | None = None,
    ):
        self.database = database
        self.stays = stays
        # On SQLite a batch holds the database's one write lock, and a
        # server's writer that found it taken sleeps in SQLite's busy
        # handler steps of 1, 2, 5, 10, 15, 20, 25 ms ... up to 100 ms
        # before it tries again, while a loop that begins its next batch
        # at once is back first: posts waited up to 1.7 s behind batch
        # after batch, and with a fixed 0.15 s rest behind batches of
        # 5,000 (100-300 ms each at 10 M readings) the p99 was 296 ms
        # (docs/benchmarks.md, "Retention"). So a batch writes for at most
        # the budget; a writer that began waiting during it has waited no
        # longer than the batch, and sleeps a step no longer than what it
        # has waited (plus 2 ms): a rest as long as the batch, plus a
        # margin for being scheduled, lets it in before the next batch.
        # PostgreSQL locks rows, never the whole database.
        self.write_budget = (
            (SQLITE_WRITE_BUDGET_S if database.is_sqlite else None)
            if write_budget is None
            else write_budget
        )
        self.pause = pause
        self.actor = actor
        self.actor_type = actor_type
        self._clock = clock

    def cutoff(self, older_than: datetime.timedelta) -> datetime.datetime:
        """The moment before which readings are old."""
        return self._clock() - older_than

    def count(self, cutoff: datetime.datetime) -> PruneResult:
        """How many readings older than ``cutoff`` would go, and how many
        stay for training runs; nothing is deleted (a dry run)."""
        started = time.monotonic()
        old = Reading.observed_at < cutoff
        with self.database.session(write=False) as session:
            total = session.scalar(select(func.count()).where(old))
            kept = session.scalar(select(func.count()).where(old, _held_by_a_run()))
        return PruneResult(
            cutoff=cutoff,
            dry_run=True,
            deleted=total - kept,
            kept_for_training_runs=kept,
            seconds=time.monotonic() - started,
        )

    def prune(
        self,
        cutoff: datetime.datetime,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[int], object] = lambda deleted: None,
    ) -> PruneResult:
        """Delete the readings older than ``cutoff`` that no training run
        holds, ``batch_size`` per transaction; ``progress(n)`` after each
        batch of ``n``. One ``readings.prune`` audit event records it,
        also when a batch failed after others were committed (they stay
        deleted; running it again goes on)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        started = time.monotonic()
        result = PruneResult(cutoff=cutoff, dry_run=False)
        after: tuple[datetime.datetime, int] | None = None
        # Days whose stays could not be computed: not tried again per batch.
        unkept: set[BadgeDay] = set()
        # Readings read per batch: with a write budget, about as many as the
        # last batch deleted in it (so that few are read to be left).
        limit = batch_size
        if self.write_budget is not None:
            limit = min(batch_size, IDS_PER_TIMED_STATEMENT * 4)
        try:
            while True:
                deleted, after, writing, complete = self._delete_batch(
                    cutoff, after, limit, result, unkept
                )
                if after is None:
                    break
                result.deleted += deleted
                result.batches += 1
                result.writing_seconds += writing
                result.longest_write_seconds = max(
                    result.longest_write_seconds, writing
                )
                progress(deleted)
                if self.write_budget is not None:
                    limit = min(
                        batch_size,
                        limit * 2
                        if complete
                        else max(IDS_PER_TIMED_STATEMENT, deleted + deleted // 4),
                    )
                rest_from = time.monotonic()
                # SQLite's write-ahead log grows by the pages each batch
                # freed; copying it back between batches keeps it short.
                self.database.checkpoint()
                pause = self.pause
                if pause is None:
                    pause = writing + 0.01 if self.database.is_sqlite else 0.0
                pause -= time.monotonic() - rest_from
                if pause > 0:
                    time.sleep(pause)
        except BaseException:
            # What was committed is gone: the log must say so. (If the
            # database itself failed, this fails too, and the original
            # error is the one raised.)
            if result.deleted:
                result.seconds = time.monotonic() - started
                with contextlib.suppress(Exception):
                    self._record(result, batch_size, finished=False)
            raise
        result.seconds = time.monotonic() - started
        self._record(result, batch_size, finished=True)
        return result

    def _record(self, result: PruneResult, batch_size: int, *, finished: bool):
        with self.database.session(write=True) as session, session.begin():
            result.kept_for_training_runs = session.scalar(
                select(func.count()).where(
                    Reading.observed_at < result.cutoff, _held_by_a_run()
                )
            )
            AuditService(session).record(
                "readings.prune",
                actor=self.actor,
                actor_type=self.actor_type,
                target=None,
                details={
                    "cutoff": result.cutoff.isoformat(),
                    "deleted": result.deleted,
                    "kept_for_training_runs": result.kept_for_training_runs,
                    "batch_size": batch_size,
                    "seconds": round(result.seconds, 1),
                    "finished": finished,
                    "days_archived": result.days_archived,
                    "stays_archived": result.stays_archived,
                    "days_without_stays": result.days_without_stays,
                },
            )

    def _delete_batch(
        self,
        cutoff: datetime.datetime,
        after: tuple[datetime.datetime, int] | None,
        batch_size: int,
        result: PruneResult,
        unkept: set[BadgeDay],
    ) -> tuple[int, tuple[datetime.datetime, int] | None, float, bool]:
        """Archive the days of the next batch and delete it, in a write
        transaction of its own, stopping after ``write_budget``: (how many
        went, where the next batch starts, None after the last; how long
        the write transaction took; whether the whole batch went)."""
        conditions = [Reading.observed_at < cutoff, ~_held_by_a_run()]
        if after is not None:
            conditions.append(tuple_(Reading.observed_at, Reading.id) > after)
        batch = (
            select(
                Reading.id,
                Reading.badge_id,
                Reading.observed_at,
                # The badge's site, else the site of the gateway that heard it.
                func.coalesce(Badge.site_id, Gateway.site_id),
            )
            .outerjoin(Badge, Badge.id == Reading.badge_id)
            .outerjoin(Gateway, Gateway.id == Reading.gateway_id)
            .where(and_(*conditions))
            .order_by(Reading.observed_at, Reading.id)
            .limit(batch_size)
        )
        with self.database.session(write=False) as session:
            rows = session.execute(batch).all()
            if not rows:
                return 0, None, 0.0, True
            days = self._days(session, rows)
            kept = self._stays_of(session, days, result, unkept)
        with self.database.session(write=True) as session, session.begin():
            archived = self._archived(session, kept)
            # The write lock is held from here (SQLite's BEGIN IMMEDIATE ran
            # with the first statement).
            writing = time.monotonic()
            now = self._clock()
            for (badge_id, day), (site_id, zone, version_id, stays) in kept.items():
                if (badge_id, day) in archived:
                    continue  # another prune kept it meanwhile
                session.add_all(
                    _archived_stay(badge_id, day, site_id, zone, version_id, s, now)
                    for s in stays
                )
                result.days_archived += 1
                result.stays_archived += len(stays)
            deleted = done = 0
            ids = [row.id for row in rows]
            # Bound parameters per statement: SQLite allows 32,766, and
            # PostgreSQL's protocol 65,535; a batch may be a million.
            step = IDS_PER_STATEMENT
            if self.write_budget is not None:
                step = IDS_PER_TIMED_STATEMENT
            while done < len(ids):
                deleted += session.execute(
                    delete(Reading)
                    .where(
                        Reading.id.in_(ids[done : done + step]),
                        Reading.observed_at < cutoff,
                        ~_held_by_a_run(),
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount
                done = min(len(ids), done + step)
                if (
                    self.write_budget is not None
                    and time.monotonic() - writing >= self.write_budget
                ):
                    break
        writing = time.monotonic() - writing
        # The rows are in (observed_at, id) order: the next batch starts
        # after the last one this batch went through.
        last = rows[done - 1]
        return deleted, (last.observed_at, last.id), writing, done == len(ids)

    def _days(self, session: Session, rows) -> dict[BadgeDay, tuple[str, str]]:
        """The badge-days of ``rows`` at a site: (site, its timezone)."""
        zones = dict(session.execute(select(Site.id, Site.timezone)).all())
        days = {}
        for _id, badge_id, observed_at, site_id in rows:
            if site_id is None or site_id not in zones:
                days.setdefault((badge_id, None), (None, None))
                continue
            day = observed_at.astimezone(zone_of(zones[site_id])).date()
            days.setdefault((badge_id, day), (site_id, zones[site_id]))
        return days

    def _stays_of(
        self,
        session: Session,
        days: dict[BadgeDay, tuple[str, str]],
        result: PruneResult,
        unkept: set[BadgeDay],
    ) -> dict[BadgeDay, tuple[str, str, int, Sequence[Stay]]]:
        """The stays of the ``days`` not archived yet, computed now."""
        kept = {}
        archived = self._archived(session, days)
        for (badge_id, day), (site_id, zone) in days.items():
            if (badge_id, day) in archived or (badge_id, day) in unkept:
                continue
            found = None
            if site_id is not None and self.stays is not None:
                found = self.stays(session, badge_id, site_id, day)
            if not found or not found[1]:
                unkept.add((badge_id, day))
                result.days_without_stays += 1
                continue
            kept[badge_id, day] = (site_id, zone, *found)
        return kept

    @staticmethod
    def _archived(session: Session, days) -> set[BadgeDay]:
        """Which of ``days`` have archived stays."""
        wanted = [(badge, day) for badge, day in days if day is not None]
        if not wanted:
            return set()
        return {
            tuple(row)
            for row in session.execute(
                select(ArchivedStay.badge_id, ArchivedStay.day)
                .where(
                    ArchivedStay.badge_id.in_({badge for badge, _ in wanted}),
                    ArchivedStay.day.in_({day for _, day in wanted}),
                )
                .distinct()
            )
        }


def _archived_stay(badge_id, day, site_id, zone, version_id, stay, now):
    return ArchivedStay(
        badge_id=badge_id,
        day=day,
        site_id=site_id,
        timezone=zone,
        room_id=stay.room_id,
        room_name=stay.room_name,
        from_at=datetime.datetime.fromisoformat(stay.from_),
        to_at=datetime.datetime.fromisoformat(stay.to),
        readings=stay.readings,
        confidence=stay.confidence,
        model_version_id=version_id,
        archived_at=now,
    )
