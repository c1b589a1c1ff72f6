"""IngestService: deduplicate and store badge readings.

The order of work for a live reading is: validate (in the view, or in the
fast path in front of Pyramid, fastpath.py), claim the advertisement's
fingerprint, insert and commit (the group writer's commit, shared with the
other requests of the moment, or else pyramid_tm's) before the 201 is sent.
The claim is confirmed after commit and released after a failed commit or
an abort, so that pyramid_retry's replay of a failed transaction, or the
gateway's own retry after a 503, claims it afresh instead of being told
"duplicate" about a reading that was never stored.

A reading observed longer than the window ago (a gateway uploading what it
buffered while offline) cannot be checked against live claims, which have
expired: it is checked against the stored readings of its badge instead,
under a per-badge lock so that gateways uploading the same buffer at once
store it once.
"""

import bisect
import datetime
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from zope.sqlalchemy import mark_changed

from ..db import utcnow
from ..errors import FieldError, Invalid
from .dedup import Claim
from .interfaces import IDeduplicator
from .models import Reading, reading_json
from .schemas import ReadingIn, fingerprint
from .writer import ReadingWriter, insert_readings


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int
    max_batch_bytes: int
    max_batch_items: int
    max_beacons: int
    max_age: datetime.timedelta
    max_clock_skew: datetime.timedelta

    @classmethod
    def from_settings(cls, settings) -> "IngestLimits":
        return cls(
            max_body_bytes=settings["stethoscope.ingest.max_body_bytes"],
            max_batch_bytes=settings["stethoscope.ingest.max_batch_bytes"],
            max_batch_items=settings["stethoscope.ingest.max_batch_items"],
            max_beacons=settings["stethoscope.ingest.max_beacons"],
            max_age=datetime.timedelta(
                hours=settings["stethoscope.ingest.max_age_hours"]
            ),
            max_clock_skew=datetime.timedelta(
                seconds=settings["stethoscope.ingest.max_clock_skew_s"]
            ),
        )


@dataclass
class ItemResult:
    """What became of one posted reading."""

    status: str  # "created" | "duplicate" | "rejected"
    id: int | None = None
    # The stored row of a created reading (see _rows).
    row: dict | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def reading(self) -> dict | None:
        """The stored reading in its API form (a batch reports ids only)."""
        return None if self.row is None else reading_json(self.id, **self.row)

    def as_json(self, index: int) -> dict:
        result = {"index": index, "status": self.status}
        if self.id is not None:
            result["id"] = self.id
        if self.errors:
            result["errors"] = [error.as_json() for error in self.errors]
        return result


@dataclass
class _Pending:
    """An accepted item waiting to be inserted."""

    index: int
    item: ReadingIn
    fingerprint: str
    observed_at: datetime.datetime
    claim: Claim | None = None


class IngestService:
    def __init__(
        self,
        *,
        session: Callable[[], Session],
        deduplicator: IDeduplicator,
        tracker,
        transaction_manager,
        limits: IngestLimits,
        writer: ReadingWriter | None = None,
        session_opened: Callable[[], bool] = lambda: False,
        last_attempt: Callable[[], bool] = lambda: False,
        clock: Callable[[], datetime.datetime] = utcnow,
        metrics=None,
    ):
        # ``session`` is a callable so that a duplicate, which never touches
        # the database, does not even open a session.
        self._session = session
        self.deduplicator = deduplicator
        self.tracker = tracker
        self.tm = transaction_manager
        self.limits = limits
        # None: every reading is stored in the request's transaction.
        self.writer = writer
        self._session_opened = session_opened
        # Whether a failure now is the answer, no attempt following
        # (pyramid_retry's is_last_attempt): activity counts each post once,
        # in the attempt that answers it. The fast path's failures go the
        # whole way, which counts them.
        self._last_attempt = last_attempt
        self.window = datetime.timedelta(milliseconds=deduplicator.window_ms)
        self._clock = clock
        # ops.metrics.Metrics: each post's outcome, counted with its activity.
        self.metrics = metrics

    def ingest_one(self, item: ReadingIn, client_ip: str | None) -> ItemResult:
        """Store one reading unless it is a duplicate.

        Raises Invalid when its ``observed_at`` is out of bounds.
        """
        result = self.ingest_many([item], client_ip)[0]
        if result.status == "rejected":
            raise Invalid(result.errors)
        return result

    def ingest_many(
        self, items: list[ReadingIn | Invalid], client_ip: str | None
    ) -> list[ItemResult]:
        """Store each valid, original item; one result per item, in order.

        Invalid items (given as the Invalid that rejected them) are
        reported and do not stop the others.
        """
        now = self._clock()
        results: list[ItemResult | None] = [None] * len(items)
        live: list[_Pending] = []
        late: list[_Pending] = []
        for index, item in enumerate(items):
            if isinstance(item, Invalid):
                results[index] = ItemResult("rejected", errors=item.errors)
                continue
            observed_at = item.observed_at or now
            problem = self._check_time(observed_at, now)
            if problem is not None:
                results[index] = ItemResult("rejected", errors=[problem])
                continue
            pending = _Pending(
                index, item, fingerprint(item.badge_id, item.beacons), observed_at
            )
            (live if now - observed_at <= self.window else late).append(pending)

        # Live originals alone are stored by the group writer, outside the
        # request's transaction, and their claims settle with its commit.
        # With late items everything shares the request's transaction, in
        # which they were checked against the stored readings; so does a
        # request that opened its session already (a session or token
        # looked up): on SQLite it holds the write lock the writer needs.
        grouped = self.writer is not None and not late and not self._session_opened()
        originals: list[_Pending] = []
        # One bound for the whole post: a batch meeting several pending
        # claims holds its thread no longer than a single reading.
        wait_until = time.monotonic() + self.deduplicator.pending_wait_ms / 1000
        try:
            for pending in live:
                pending.claim = self.deduplicator.claim(pending.fingerprint, wait_until)
                if pending.claim is None:
                    results[pending.index] = ItemResult("duplicate")
                else:
                    if not grouped:
                        self._release_on_failure(pending.claim)
                    originals.append(pending)
        except BaseException:
            # ClaimPending among others. Grouped claims have no transaction
            # hooks: release them here.
            for pending in originals if grouped else ():
                self.deduplicator.release(pending.claim)
            raise
        try:
            if late:
                stored = self._find_stored(late)
                for pending, duplicate in zip(late, stored, strict=True):
                    if duplicate:
                        results[pending.index] = ItemResult("duplicate")
                    else:
                        originals.append(pending)
            if originals:
                originals.sort(key=lambda p: p.index)
                rows = _rows(originals, now)
                insert = self._insert_grouped if grouped else self._insert
                ids = insert(originals, rows)
                for pending, row, reading_id in zip(originals, rows, ids, strict=True):
                    results[pending.index] = ItemResult("created", reading_id, row)
        except BaseException:
            if self._last_attempt():
                self._count(items, results, client_ip, now, stored=False)
            raise

        if grouped or self.tm is None:
            # Stored and committed already (or nothing to store).
            self._count(items, results, client_ip, now, stored=True)
        else:
            self._count_when_answered(items, results, client_ip, now)
        return results

    def _count(self, items, results, client_ip, now, *, stored: bool) -> None:
        """Add the posts to their gateways' and badges' activity and, if the
        readings created were ``stored`` (committed), their beacons to
        theirs."""
        metrics = self.metrics
        for result, item in zip(results, items, strict=True):
            if not isinstance(item, ReadingIn):
                if metrics is not None:
                    metrics.reading(None, "rejected", late=False)
                continue
            if metrics is not None and result is not None:
                late = item.observed_at is not None and (
                    now - item.observed_at > self.window
                )
                metrics.reading(item.pi_id, result.status, late)
            if stored and result is not None and result.status == "created":
                self.tracker.record_beacons(item.beacons, result.row["observed_at"])
            self.tracker.record(
                item.pi_id,
                item.badge_id,
                client_ip,
                now,
                duplicate=result is not None and result.status == "duplicate",
            )

    def _count_when_answered(self, items, results, client_ip, now) -> None:
        """Count once the request's transaction ends, unless pyramid_retry
        replays the request then (the replay counts it)."""
        settled = []

        def settle(count: bool, stored: bool) -> None:
            # A failed commit may be followed by an abort: the first decides.
            if not settled:
                settled.append(True)
                if count:
                    self._count(items, results, client_ip, now, stored=stored)

        transaction = self.tm.get()
        # A failed commit is replayed unless this is the last attempt. An
        # abort is an answer (a reading refused for its time, 400): the
        # failures that are replayed come from the commit, or from this
        # service's own writes, which raised before this was called.
        transaction.addAfterCommitHook(
            lambda committed: settle(committed or self._last_attempt(), committed)
        )
        transaction.addAfterAbortHook(settle, args=(True, False))

    def _check_time(self, observed_at, now) -> FieldError | None:
        if observed_at - now > self.limits.max_clock_skew:
            return FieldError(
                "observed_at", "is in the future; check the gateway's clock"
            )
        if now - observed_at > self.limits.max_age:
            hours = self.limits.max_age.total_seconds() / 3600
            return FieldError("observed_at", f"is older than {hours:g} hours")
        return None

    def _release_on_failure(self, claim: Claim) -> None:
        transaction = self.tm.get()
        transaction.addAfterCommitHook(self._after_commit, args=(claim,))
        transaction.addAfterAbortHook(self.deduplicator.release, args=(claim,))

    def _after_commit(self, committed: bool, claim: Claim) -> None:
        if committed:
            self.deduplicator.confirm(claim)
        else:
            self.deduplicator.release(claim)

    def _find_stored(self, late: list[_Pending]) -> list[bool]:
        """For each late item: is it a duplicate of a stored or earlier item?"""
        session = self._session()
        badges = sorted({p.item.badge_id for p in late})
        if session.get_bind().dialect.name == "postgresql":
            # Serialise late uploads per badge across processes; SQLite's
            # write transactions (BEGIN IMMEDIATE) are serialised already.
            # Taken in the order of the keys, not of the badges: two badges
            # whose keys collide would otherwise let two uploads take the
            # same two locks in opposite orders (a deadlock, answered 503).
            for key in sorted({zlib.crc32(badge_id.encode()) for badge_id in badges}):
                session.execute(select(func.pg_advisory_xact_lock(key)))
        start = min(p.observed_at for p in late) - self.window
        end = max(p.observed_at for p in late) + self.window
        seen: dict[str, list[datetime.datetime]] = {}
        stored = session.execute(
            select(Reading.fingerprint, Reading.observed_at).where(
                Reading.badge_id.in_(badges),
                Reading.observed_at >= start,
                Reading.observed_at <= end,
            )
        )
        for key, observed_at in stored:
            seen.setdefault(key, []).append(observed_at)
        for times in seen.values():
            times.sort()

        duplicates = []
        for pending in late:
            times = seen.setdefault(pending.fingerprint, [])
            at = bisect.bisect_left(times, pending.observed_at - self.window)
            duplicate = (
                at < len(times) and times[at] <= pending.observed_at + self.window
            )
            if not duplicate:
                bisect.insort(times, pending.observed_at)
            duplicates.append(duplicate)
        return duplicates

    def _insert_grouped(self, originals: list[_Pending], rows: list[dict]) -> list[int]:
        """Stored and committed by the group writer; claims settled here."""
        try:
            ids = self.writer.insert(rows)
        except BaseException:
            for pending in originals:
                self.deduplicator.release(pending.claim)
            raise
        for pending in originals:
            self.deduplicator.confirm(pending.claim)
        return ids

    def _insert(self, originals: list[_Pending], rows: list[dict]) -> list[int]:
        """Added to the request's transaction (pyramid_tm commits it)."""
        session = self._session()
        ids = insert_readings(session, rows)
        # A Core insert does not tell zope.sqlalchemy that the session
        # changed; without this the transaction would not be committed.
        mark_changed(session)
        return ids


def _rows(originals: list[_Pending], now) -> list[dict]:
    return [
        {
            "badge_id": p.item.badge_id,
            "gateway_id": p.item.pi_id,
            "received_at": now,
            "observed_at": p.observed_at,
            "badge_strength": p.item.badge_strength,
            "beacons": p.item.beacons,
            "fingerprint": p.fingerprint,
        }
        for p in originals
    ]


class ReadingQueryService:
    """Reads stored readings back (live charts, the recent-readings page)."""

    def __init__(self, session: Session):
        self.session = session

    def page(
        self,
        *,
        badge_id: str | None,
        after: int | None,
        limit: int,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> list[dict]:
        """Readings in id order: those after ``after``, or else the latest
        ``limit``; observed from ``since`` and before ``until`` if given."""
        query = _observed_between(select(Reading), since, until)
        if badge_id is not None:
            query = query.where(Reading.badge_id == badge_id)
        if after is not None:
            rows = self.session.scalars(
                query.where(Reading.id > after).order_by(Reading.id).limit(limit)
            ).all()
        else:
            rows = self.session.scalars(
                query.order_by(Reading.id.desc()).limit(limit)
            ).all()[::-1]
        return [row.as_json() for row in rows]

    def observed(
        self,
        *,
        badge_id: str | None = None,
        gateway_id: str | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        limit: int,
    ) -> list[Reading]:
        """The ``limit`` readings observed last (from ``since``, before
        ``until``), newest observed first: what a person asks of "recent"."""
        query = _observed_between(select(Reading), since, until)
        if badge_id is not None:
            query = query.where(Reading.badge_id == badge_id)
        if gateway_id is not None:
            query = query.where(Reading.gateway_id == gateway_id)
        return list(
            self.session.scalars(
                query.order_by(Reading.observed_at.desc(), Reading.id.desc()).limit(
                    limit
                )
            )
        )


def _observed_between(query, since, until):
    if since is not None:
        query = query.where(Reading.observed_at >= since)
    if until is not None:
        query = query.where(Reading.observed_at < until)
    return query
