"""Deleting readings older than a cut-off, except those training runs hold.

Readings say where residents were, so they are kept no longer than they
are of use; training data is the exception: a reading inside a training
run (its badge, ``started_at`` to ``ended_at``, an open run to now) is
what models learn from, and stays. A cancelled run is never training data
and keeps nothing.

Why batches: one ``DELETE`` of a month of readings (millions of rows)
would hold its locks for as long as it runs: on SQLite the one write lock
of the whole database, so every gateway's post waits behind it (and after
``busy_timeout`` gets a 503); on PostgreSQL the rows' locks and one huge
transaction whose dead rows autovacuum can clean only at the end. So the
readings go ``batch_size`` at a time, each batch its own short
transaction, committed before the next begins: a writer waits at most one
batch (on SQLite, with a rest between batches: see RetentionService).
Each batch is one statement, the same on both databases,

    DELETE FROM readings WHERE id IN (
        SELECT id FROM readings
        WHERE observed_at < :cutoff AND (observed_at, id) > (:after)
          AND NOT EXISTS (a run of its badge that holds it)
        ORDER BY observed_at, id LIMIT :batch_size)
    RETURNING observed_at, id

which walks ``ix_readings_observed_at`` from where the last batch
stopped (so the readings kept for runs are read past once, not once per
batch) and never reads a reading newer than the cut-off. The training
runs are looked at inside each batch's statement, so a run committed
before a batch began protects its readings from that batch on.
"""

import contextlib
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, or_, select, tuple_

from ..audit.services import AuditService
from ..db import Database, utcnow
from ..ingest.models import Reading
from ..labels.models import TrainingRun

DEFAULT_BATCH_SIZE = 5_000
# Between two batches on SQLite: more than the longest step (100 ms) of
# SQLite's busy handler, which a server's writer waiting for the lock sleeps.
SQLITE_PAUSE_S = 0.15


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
    batch. ``actor`` and ``actor_type`` name who pruned in the audit log;
    ``pause`` is the rest between batches (default: SQLITE_PAUSE_S on
    SQLite, none on PostgreSQL).
    """

    def __init__(
        self,
        database: Database,
        *,
        actor: str,
        actor_type: str,
        clock: Callable[[], datetime.datetime] = utcnow,
        pause: float | None = None,
    ):
        self.database = database
        # On SQLite a server's writer that found the lock taken sleeps in
        # steps of up to 100 ms before it tries again (busy_timeout), while
        # a loop that begins its next batch at once is back first: posts
        # waited up to 1.7 s behind batch after batch (docs/benchmarks.md,
        # "Retention"). A pause longer than that step lets them in between
        # batches. PostgreSQL locks rows, never the whole database.
        self.pause = (
            (SQLITE_PAUSE_S if database.is_sqlite else 0.0) if pause is None else pause
        )
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
        try:
            while True:
                deleted, after = self._delete_batch(cutoff, after, batch_size)
                if not deleted:
                    break
                result.deleted += deleted
                result.batches += 1
                progress(deleted)
                # SQLite's write-ahead log grows by the pages each batch
                # freed; copying it back between batches keeps it short.
                self.database.checkpoint()
                if self.pause:
                    time.sleep(self.pause)
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
                },
            )

    def _delete_batch(
        self,
        cutoff: datetime.datetime,
        after: tuple[datetime.datetime, int] | None,
        batch_size: int,
    ) -> tuple[int, tuple[datetime.datetime, int] | None]:
        """Delete one batch in its own transaction: (how many, where the
        next batch starts)."""
        conditions = [Reading.observed_at < cutoff, ~_held_by_a_run()]
        if after is not None:
            conditions.append(tuple_(Reading.observed_at, Reading.id) > after)
        batch = (
            select(Reading.id)
            .where(and_(*conditions))
            .order_by(Reading.observed_at, Reading.id)
            .limit(batch_size)
        )
        statement = (
            delete(Reading)
            .where(Reading.id.in_(batch.scalar_subquery()))
            .returning(Reading.observed_at, Reading.id)
            .execution_options(synchronize_session=False)
        )
        with self.database.session(write=True) as session, session.begin():
            rows = session.execute(statement).all()
        if not rows:
            return 0, after
        return len(rows), max((row.observed_at, row.id) for row in rows)
