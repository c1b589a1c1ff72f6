"""LabelService: training runs, their live statistics and per-room coverage.

A training run says "badge B was in room R from t0 to t1"; its readings are
the badge's readings with ``observed_at`` in [t0, t1) (t1 = now while the run
is open). Runs are never linked to readings by a key: deleting or relabelling
a run changes what its readings mean, never the readings themselves.

The rules SQL cannot state portably — a badge is in at most one open run, and
runs of one badge never overlap — are checked here, under a per-badge lock:
``pg_advisory_xact_lock`` on PostgreSQL, held to the end of the transaction;
SQLite needs none, since its write transactions (``BEGIN IMMEDIATE``) are
serialised already.
"""

import datetime
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session, joinedload

from ..audit.services import no_audit
from ..db import advisory_lock, utcnow
from ..errors import Conflict, NotFound, ValidationError
from ..ingest.models import Reading
from ..registry.models import Badge, Room
from ..schemas import IDENTIFIER
from .models import TrainingRun
from .schemas import MAX_BADGES

# The first key of the two-key advisory locks taken on training runs: the
# two-key space never overlaps the one-key locks ingest takes per badge.
ADVISORY_LOCK_CLASS = 0x5452  # "TR"


@dataclass(frozen=True)
class RunStats:
    """What a run has collected so far (or in all, once it has ended)."""

    run: TrainingRun
    readings: int
    beacons: list[str]
    last_reading_at: datetime.datetime | None
    seconds_since_last: float | None
    silent: bool
    warnings: list[str]


@dataclass
class RoomCoverage:
    room: Room
    runs: int = 0
    readings: int = 0
    badges: int = 0
    warnings: list[str] = field(default_factory=list)


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _conflict(message: str, badge_id: str, run_id: int | None = None) -> Conflict:
    """A request that would break a rule about runs (an open run, an
    overlap); the body says which badge and run are in the way."""
    return Conflict(message, details={"badge_id": badge_id, "run_id": run_id})


def lock_badges(session: Session, badge_ids) -> None:
    """Serialise changes to the training runs of these badges (PostgreSQL).

    Sorted, so that two transactions locking overlapping sets of badges take
    the locks in the same order and cannot deadlock. SQLite's write
    transactions are serialised already.
    """
    advisory_lock(session, ADVISORY_LOCK_CLASS, badge_ids)


class LabelService:
    """Starts, ends, cancels, deletes and relabels training runs; reports on them.

    ``audit(action, target=, details=)`` records each change in the caller's
    transaction (in requests: stethoscope.audit.services.record bound to the
    request). ``clock`` gives the current time (aware UTC).
    """

    # A badge advertises about once a second: half a minute without a
    # reading means it is out of range, off or flat, not unlucky.
    SILENT_AFTER = datetime.timedelta(seconds=30)
    # Coverage thresholds for an honest evaluation. Readings of one run are
    # strongly correlated, so the trainer cross-validates grouped by run:
    # with fewer than three runs a room has almost nothing to hold out.
    MIN_RUNS = 3
    MIN_READINGS = 200
    # A room with under 1/IMBALANCE of the median room's readings.
    IMBALANCE = 5

    def __init__(
        self,
        session: Session,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
        audit: Callable[..., object] = no_audit,
    ):
        self.session = session
        self._clock = clock
        self._audit = audit

    # ---- changes -----------------------------------------------------------

    def start(
        self,
        badge_ids: Iterable[str],
        room_id: str,
        actor: str,
        started_at: datetime.datetime | None = None,
        *,
        source: str = "live",
    ) -> list[TrainingRun]:
        """Start one open run per badge in ``room_id``, all at the same moment.

        ``started_at`` defaults to now, taken once for every badge. Raises
        ValidationError for a bad badge id or unknown room, Conflict (naming
        the badge and the run in its details) when a badge already has an
        open run or the new run would overlap one of its runs that is not
        cancelled; then nothing is started.
        """
        badges = self._badge_ids(badge_ids)
        room = self._room(room_id)
        started_at = started_at or self._clock()
        lock_badges(self.session, badges)
        # An open run reaches to "now and on", so anything of the badge's
        # that ends after the new start (or has not ended) overlaps it.
        clashes = self.session.scalars(
            select(TrainingRun)
            .where(
                TrainingRun.badge_id.in_(badges),
                TrainingRun.cancelled_at.is_(None),
                or_(
                    TrainingRun.ended_at.is_(None),
                    TrainingRun.ended_at > started_at,
                ),
            )
            .order_by(TrainingRun.badge_id, TrainingRun.started_at)
        ).first()
        if clashes is not None:
            if clashes.ended_at is None:
                message = (
                    f"badge {clashes.badge_id} already has an open run "
                    f"({clashes.id}); end it first"
                )
            else:
                message = (
                    f"badge {clashes.badge_id}: the run would overlap run "
                    f"{clashes.id} ({clashes.started_at.isoformat()} to "
                    f"{clashes.ended_at.isoformat()})"
                )
            raise _conflict(message, clashes.badge_id, clashes.id)
        runs = [
            TrainingRun(
                badge_id=badge_id,
                room_id=room.id,
                started_at=started_at,
                created_by=actor[:64],
                source=source,
            )
            for badge_id in badges
        ]
        self.session.add_all(runs)
        self.session.flush()
        for run in runs:
            self._audit_run("run.start", run, started_at=run.started_at.isoformat())
        return runs

    def end(
        self,
        *,
        run_ids: Iterable[int] | None = None,
        badge_ids: Iterable[str] | None = None,
        actor: str,
        ended_at: datetime.datetime | None = None,
    ) -> list[RunStats]:
        """End open runs, given by id or by badge, all at one moment.

        Returns each run's final statistics; a run with no readings may be
        ended but says so in its warnings. Raises NotFound for an unknown
        id, Conflict when a run (or a badge's run) is not open.
        """
        ended_at = ended_at or self._clock()
        if run_ids is not None:
            runs = [self.get(run_id) for run_id in _unique(run_ids)]
            if not runs:
                raise ValidationError("run_ids", "name at least one run")
            for run in runs:
                if run.status != "open":
                    raise _conflict(
                        f"run {run.id} is {run.status}, not open", run.badge_id, run.id
                    )
        elif badge_ids is not None:
            badges = self._badge_ids(badge_ids)
            found = {run.badge_id: run for run in self.open_runs(badges)}
            for badge_id in badges:
                if badge_id not in found:
                    raise _conflict(f"badge {badge_id} has no open run", badge_id)
            runs = [found[badge_id] for badge_id in badges]
        else:
            raise ValidationError("body", "give run_ids or badge_ids")
        for run in runs:
            if ended_at <= run.started_at:
                raise ValidationError(
                    "ended_at", f"run {run.id} cannot end before it started"
                )
        for run in runs:
            run.ended_at = ended_at
        self.session.flush()
        results = self.stats_of(runs)
        for result in results:
            self._audit_run(
                "run.end",
                result.run,
                ended_at=ended_at.isoformat(),
                readings=result.readings,
                ended_by=actor,
            )
        return results

    def cancel(self, run_id: int, actor: str) -> TrainingRun:
        """Mark a run cancelled: kept for the record, never training data."""
        run = self.get(run_id)
        if run.cancelled_at is not None:
            raise _conflict(f"run {run.id} is already cancelled", run.badge_id, run.id)
        was = run.status
        run.cancelled_at = self._clock()
        self.session.flush()
        self._audit_run("run.cancel", run, was=was)
        return run

    def delete(self, run_id: int, actor: str) -> TrainingRun:
        """Delete a run and return it (as it was). Its readings stay; they are
        merely unlabelled again."""
        run = self.get(run_id)
        self.session.delete(run)
        self.session.flush()
        self._audit(
            "run.delete",
            target=run.badge_id,
            details={
                "id": run.id,
                "room_id": run.room_id,
                "started_at": run.started_at.isoformat(),
                "ended_at": _iso(run.ended_at),
                "status": run.status,
            },
        )
        return run

    def _audit_run(self, action: str, run: TrainingRun, **details) -> None:
        self._audit(
            action,
            target=run.badge_id,
            details={"run_id": run.id, "room_id": run.room_id, **details},
        )

    def relabel(self, run_id: int, room_id: str, actor: str) -> TrainingRun:
        """Say the run's badge was in ``room_id`` instead."""
        run = self.get(run_id)
        room = self._room(room_id)
        if room.id == run.room_id:
            return run
        before = run.room_id
        # The relationship, not just the key: a loaded run.room would
        # otherwise still name the old room until the session expires it.
        run.room = room
        self.session.flush()
        self._audit(
            "run.relabel",
            target=run.badge_id,
            details={"run_id": run.id, "from": before, "to": room.id},
        )
        return run

    # ---- reading -------------------------------------------------------------

    def get(self, run_id: int) -> TrainingRun:
        run = self.session.get(
            TrainingRun, run_id, options=[joinedload(TrainingRun.room)]
        )
        if run is None:
            raise NotFound(f"no training run {run_id}")
        return run

    def open_runs(self, badge_ids: Iterable[str] | None = None) -> list[TrainingRun]:
        """Open runs (of ``badge_ids``, or all), oldest first."""
        query = (
            select(TrainingRun)
            .options(joinedload(TrainingRun.room).joinedload(Room.site))
            .where(TrainingRun.ended_at.is_(None), TrainingRun.cancelled_at.is_(None))
            .order_by(TrainingRun.started_at, TrainingRun.id)
        )
        if badge_ids is not None:
            query = query.where(TrainingRun.badge_id.in_(list(badge_ids)))
        return list(self.session.scalars(query))

    def page(
        self,
        *,
        status: str | None = None,
        room_id: str | None = None,
        badge_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[TrainingRun], int]:
        """Runs newest first, filtered; and how many match in all."""
        conditions = []
        if status == "open":
            conditions += [
                TrainingRun.ended_at.is_(None),
                TrainingRun.cancelled_at.is_(None),
            ]
        elif status == "completed":
            conditions += [
                TrainingRun.ended_at.is_not(None),
                TrainingRun.cancelled_at.is_(None),
            ]
        elif status == "cancelled":
            conditions.append(TrainingRun.cancelled_at.is_not(None))
        elif status == "finished":  # completed or cancelled
            conditions.append(
                or_(
                    TrainingRun.ended_at.is_not(None),
                    TrainingRun.cancelled_at.is_not(None),
                )
            )
        elif status is not None:
            raise ValidationError("status", "must be open, completed or cancelled")
        if room_id is not None:
            conditions.append(TrainingRun.room_id == room_id)
        if badge_id is not None:
            conditions.append(TrainingRun.badge_id == badge_id)
        total = self.session.scalar(
            select(func.count()).select_from(TrainingRun).where(*conditions)
        )
        runs = self.session.scalars(
            select(TrainingRun)
            .options(joinedload(TrainingRun.room).joinedload(Room.site))
            .where(*conditions)
            .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(runs), total

    def stats(self, run_ids: Iterable[int] | None = None) -> list[RunStats]:
        """Live statistics of the runs ``run_ids`` (unknown ids are skipped),
        or of every open run when none are given."""
        if run_ids is None:
            runs = self.open_runs()
        else:
            ids = _unique(run_ids)
            runs = list(
                self.session.scalars(
                    select(TrainingRun)
                    .options(joinedload(TrainingRun.room).joinedload(Room.site))
                    .where(TrainingRun.id.in_(ids))
                    .order_by(TrainingRun.started_at, TrainingRun.id)
                )
            )
        return self.stats_of(runs)

    def stats_of(self, runs: list[TrainingRun]) -> list[RunStats]:
        now = self._clock()
        return [self._run_stats(run, now) for run in runs]

    def _run_stats(self, run: TrainingRun, now: datetime.datetime) -> RunStats:
        end = run.ended_at or now
        in_span = (
            Reading.badge_id == run.badge_id,
            Reading.observed_at >= run.started_at,
            Reading.observed_at < end,
        )
        # Both use the (badge_id, observed_at) index.
        count, last = self.session.execute(
            select(func.count(), func.max(Reading.observed_at)).where(*in_span)
        ).one()
        beacons = self._beacons_heard(in_span) if count else []
        if last is not None and last.tzinfo is None:
            # func.max() loses the column's type on SQLite: it comes back as text.
            last = last.replace(tzinfo=datetime.UTC)
        since = (now - last).total_seconds() if last is not None else None
        is_open = run.status == "open"
        quiet_since = last or run.started_at
        silent = is_open and now - quiet_since > self.SILENT_AFTER
        warnings = []
        if silent:
            warnings.append(
                f"no reading for over {self.SILENT_AFTER.seconds} s: is the "
                "badge on, charged and in range of a gateway?"
            )
        if run.status == "completed" and count == 0:
            warnings.append("no readings: this run teaches the model nothing")
        return RunStats(run, count, beacons, last, since, silent, warnings)

    def _beacons_heard(self, in_span) -> list[str]:
        """The distinct beacon ids in the span's readings, from SQL."""
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            keys = (
                func.jsonb_object_keys(Reading.beacons)
                .table_valued("value")
                .render_derived()
            )
            query = select(keys.c.value).select_from(Reading).join(keys, true())
        else:  # SQLite, the only other database we run on
            keys = func.json_each(Reading.beacons).table_valued("key")
            query = select(keys.c.key).select_from(Reading).join(keys, true())
        return sorted(self.session.scalars(query.where(*in_span).distinct()))

    def coverage(self, site_id: str | None = None) -> list[RoomCoverage]:
        """Per room: completed runs, their readings and badges, and warnings
        where the room has too little for an honest evaluation."""
        rooms_query = (
            select(Room).options(joinedload(Room.site)).order_by(Room.site_id, Room.id)
        )
        if site_id is not None:
            rooms_query = rooms_query.where(Room.site_id == site_id)
        rooms = {
            room.id: RoomCoverage(room) for room in self.session.scalars(rooms_query)
        }
        completed = (
            TrainingRun.ended_at.is_not(None),
            TrainingRun.cancelled_at.is_(None),
            TrainingRun.room_id.in_(list(rooms)),
        )
        for room_id, runs, badges in self.session.execute(
            select(
                TrainingRun.room_id,
                func.count(TrainingRun.id),
                func.count(TrainingRun.badge_id.distinct()),
            )
            .where(*completed)
            .group_by(TrainingRun.room_id)
        ):
            rooms[room_id].runs = runs
            rooms[room_id].badges = badges
        # Runs of one badge never overlap, so no reading is counted twice.
        for room_id, readings in self.session.execute(
            select(TrainingRun.room_id, func.count(Reading.id))
            .join(
                Reading,
                (Reading.badge_id == TrainingRun.badge_id)
                & (Reading.observed_at >= TrainingRun.started_at)
                & (Reading.observed_at < TrainingRun.ended_at),
            )
            .where(*completed)
            .group_by(TrainingRun.room_id)
        ):
            rooms[room_id].readings = readings
        self._warn(list(rooms.values()))
        return list(rooms.values())

    def _warn(self, rooms: list[RoomCoverage]) -> None:
        with_data = [room.readings for room in rooms if room.readings]
        median = statistics.median(with_data) if len(with_data) > 1 else None
        for room in rooms:
            if room.runs < self.MIN_RUNS:
                room.warnings.append(
                    f"fewer than {self.MIN_RUNS} runs: grouped cross-validation "
                    "needs several runs per room"
                )
            if room.readings < self.MIN_READINGS:
                room.warnings.append(f"fewer than {self.MIN_READINGS} readings")
            if median is not None and room.readings * self.IMBALANCE < median:
                room.warnings.append(
                    f"class imbalance: under 1/{self.IMBALANCE} of the median "
                    f"room's readings ({median:g})"
                )

    def recent_badges(
        self, within: datetime.timedelta, *, busy: set[str] = frozenset()
    ) -> list[dict]:
        """Active badges heard within ``within`` (as the registry's activity
        flush last wrote it), by id; ``busy`` marks those in an open run."""
        since = self._clock() - within
        badges = self.session.scalars(
            select(Badge)
            .where(Badge.last_seen >= since, Badge.active.is_(True))
            .order_by(Badge.id)
        )
        return [
            {"id": badge.id, "wearer": badge.wearer, "busy": badge.id in busy}
            for badge in badges
        ]

    def rooms(self) -> list[Room]:
        """Every room, by site and name, with its site loaded."""
        return list(
            self.session.scalars(
                select(Room)
                .options(joinedload(Room.site))
                .order_by(Room.site_id, Room.name, Room.id)
            )
        )

    # ---- helpers -------------------------------------------------------------

    def _badge_ids(self, badge_ids: Iterable[str]) -> list[str]:
        if isinstance(badge_ids, str):
            raise ValidationError("badge_ids", "must be a list of badge ids")
        badges = _unique(badge_ids)
        if not badges:
            raise ValidationError("badge_ids", "name at least one badge")
        if len(badges) > MAX_BADGES:
            raise ValidationError("badge_ids", f"at most {MAX_BADGES} badges at once")
        for badge_id in badges:
            if not isinstance(badge_id, str) or not IDENTIFIER.fullmatch(badge_id):
                raise ValidationError(
                    "badge_ids",
                    f"{badge_id!r} is not a badge id (1 to 64 printable "
                    "characters, no spaces)",
                )
        return badges

    def _room(self, room_id: str) -> Room:
        room = None
        if isinstance(room_id, str) and IDENTIFIER.fullmatch(room_id):
            room = self.session.get(Room, room_id, options=[joinedload(Room.site)])
        if room is None:
            raise ValidationError("room_id", f"no room {room_id!r}")
        return room


def _unique(items: Iterable) -> list:
    """The items in their order, each once."""
    return list(dict.fromkeys(items))
