"""Last-seen and traffic counters of gateways and badges, and when each beacon
was first and last heard, without a write per POST.

Each process adds up what it sees in memory and writes the sums every
``flush_seconds`` in short transactions (upserts adding its counts, so
several processes sharing a database add up correctly). A failed flush puts
the counts it did not write back, to be written next time.
"""

import contextlib
import dataclasses
import datetime
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import case, or_

from ..db import upsert_insert
from .models import Badge, Beacon, Gateway

log = logging.getLogger(__name__)


@dataclass
class Tally:
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    last_source: str | None
    posts: int = 0
    duplicates: int = 0

    def add(self, other: "Tally") -> None:
        self.first_seen = min(self.first_seen, other.first_seen)
        if other.last_seen >= self.last_seen:
            self.last_seen = other.last_seen
            self.last_source = other.last_source
        self.posts += other.posts
        self.duplicates += other.duplicates


class ActivityTracker:
    def __init__(self, database, flush_seconds: int, clock=time.monotonic):
        self.database = database
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._gateways: dict[str, Tally] = {}
        self._badges: dict[str, Tally] = {}
        # beacon id -> (first heard, last heard)
        self._beacons: dict[str, tuple[datetime.datetime, datetime.datetime]] = {}
        self._next_flush = clock() + flush_seconds

    def record(
        self,
        gateway_id: str,
        badge_id: str,
        ip: str | None,
        at: datetime.datetime,
        *,
        duplicate: bool,
    ) -> None:
        """Count one post of ``badge_id`` by ``gateway_id``."""
        with self._lock:
            _count(self._gateways, gateway_id, at, ip, duplicate)
            _count(self._badges, badge_id, at, gateway_id, duplicate)
        if self.flush_seconds and self._clock() >= self._next_flush:
            self._next_flush = self._clock() + self.flush_seconds
            threading.Thread(
                target=self.flush, name="activity-flush", daemon=True
            ).start()

    def record_beacons(self, beacon_ids, at: datetime.datetime) -> None:
        """Note that the beacons ``beacon_ids`` were heard at ``at``.

        Ingest calls this for original readings only: a duplicate adds no
        news about a beacon. An unknown beacon gets a row (in no room) at
        the next flush, which is how it reaches the admins' unplaced list.
        """
        with self._lock:
            for beacon_id in beacon_ids:
                heard = self._beacons.get(beacon_id)
                if heard is None:
                    self._beacons[beacon_id] = (at, at)
                else:
                    self._beacons[beacon_id] = (min(heard[0], at), max(heard[1], at))

    def pending_beacons(self) -> dict[str, tuple]:
        """Copy of the beacon times not yet written: id -> (first, last)."""
        with self._lock:
            return dict(self._beacons)

    def pending(self) -> tuple[dict[str, Tally], dict[str, Tally]]:
        """Copies of the counts not yet written: (gateways, badges).

        A flush may be writing others meanwhile (they are in neither the
        copies nor, until it commits, the database): see ``flushes_held``.
        """
        with self._lock:
            return (
                {key: dataclasses.replace(t) for key, t in self._gateways.items()},
                {key: dataclasses.replace(t) for key, t in self._badges.items()},
            )

    @contextlib.contextmanager
    def flushes_held(self):
        """Keep this process's flushes waiting (and wait for one under way).

        Inside, every count of this process is either in ``pending()`` or
        committed, and none moves from one to the other: the counts pending
        then, and a database read whose snapshot begins inside, hold each
        count exactly once. Short reads only: ingest never waits for this,
        but the counts wait to be written.
        """
        with self._flush_lock:
            yield

    def flush(self) -> None:
        """Write the counts gathered so far; on failure keep them for later.

        In transactions of at most ``FLUSH_ROWS`` rows, each taking its turn
        with the readings' writes (``Database.write_turn``): a write
        transaction holds SQLite's one write lock, and a flush of thousands
        of badges in one brought ingest to a standstill (docs/benchmarks.md).
        After each, SQLite's log is checkpointed outside the turn
        (``Database.checkpoint``).
        """
        with self._flush_lock:
            with self._lock:
                gateways, self._gateways = self._gateways, {}
                badges, self._badges = self._badges, {}
                beacons, self._beacons = self._beacons, {}
            parts = [
                *(("gateways", chunk) for chunk in _chunks(gateways)),
                *(("badges", chunk) for chunk in _chunks(badges)),
                *(("beacons", chunk) for chunk in _chunks(beacons)),
            ]
            for done, (kind, chunk) in enumerate(parts):
                try:
                    session = self.database.session(write=True)
                    with self.database.write_turn, session, session.begin():
                        _WRITERS[kind](session, chunk)
                except Exception:
                    log.exception(
                        "could not write gateway and badge activity; will retry"
                    )
                    for kind, chunk in parts[done:]:
                        self._put_back(kind, chunk)
                    return
                # Committed: this chunk is not put back whatever happens now
                # (it would be counted twice); a checkpoint never raises.
                self.database.checkpoint()

    def _put_back(self, kind: str, chunk: dict) -> None:
        with self._lock:
            if kind == "gateways":
                _merge(self._gateways, chunk)
            elif kind == "badges":
                _merge(self._badges, chunk)
            else:
                for beacon_id, (first, last) in chunk.items():
                    heard = self._beacons.get(beacon_id, (first, last))
                    self._beacons[beacon_id] = (
                        min(heard[0], first),
                        max(heard[1], last),
                    )


FLUSH_ROWS = 200


def _chunks(items: dict) -> list[dict]:
    ordered = sorted(items.items())
    return [
        dict(ordered[start : start + FLUSH_ROWS])
        for start in range(0, len(ordered), FLUSH_ROWS)
    ]


def _count(tallies, key, at, source, duplicate) -> None:
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = Tally(at, at, source)
    else:
        # Posts are recorded by many threads: an earlier one may come second.
        tally.first_seen = min(tally.first_seen, at)
        if at >= tally.last_seen:
            tally.last_seen = at
            tally.last_source = source
    tally.posts += 1
    tally.duplicates += duplicate


def _merge(into: dict[str, Tally], other: dict[str, Tally]) -> None:
    for key, tally in other.items():
        if key in into:
            tally.add(into[key])
        into[key] = tally


def _upsert(session, model, source_column: str, tallies: dict[str, Tally]) -> None:
    if not tallies:
        return
    # On the table, not the mapped class: an ORM-enabled insert goes through
    # the ORM's bulk machinery row by row, which plain rows do not need
    # (a flush of 2,048 rows: 46 -> 38 ms of CPU on SQLite).
    statement = upsert_insert(session, model.__table__)
    new = statement.excluded
    table = model.__table__.c
    newer = or_(table.last_seen.is_(None), new.last_seen > table.last_seen)
    statement = statement.on_conflict_do_update(
        index_elements=[table.id],
        set_={
            "posts": table.posts + new.posts,
            "duplicates": table.duplicates + new.duplicates,
            # A row an admin created before the device was heard has no
            # times yet (NULL): the new ones then win.
            "first_seen": case(
                (
                    or_(table.first_seen.is_(None), new.first_seen < table.first_seen),
                    new.first_seen,
                ),
                else_=table.first_seen,
            ),
            "last_seen": case(
                (newer, new.last_seen),
                else_=table.last_seen,
            ),
            source_column: case(
                (newer, getattr(new, source_column)),
                else_=table[source_column],
            ),
        },
    )
    rows = [
        {
            "id": key,
            "first_seen": t.first_seen,
            "last_seen": t.last_seen,
            source_column: t.last_source,
            "posts": t.posts,
            "duplicates": t.duplicates,
        }
        for key, t in sorted(tallies.items())
    ]
    session.execute(statement, rows)


def _upsert_beacons(session, beacons: dict[str, tuple]) -> None:
    if not beacons:
        return
    statement = upsert_insert(session, Beacon.__table__)
    new = statement.excluded
    table = Beacon.__table__.c
    # A beacon an admin described before it was heard has NULL times: the
    # new ones win; otherwise the earlier first and the later last.
    statement = statement.on_conflict_do_update(
        index_elements=[table.id],
        set_={
            "first_heard": case(
                (
                    or_(
                        table.first_heard.is_(None),
                        new.first_heard < table.first_heard,
                    ),
                    new.first_heard,
                ),
                else_=table.first_heard,
            ),
            "last_heard": case(
                (
                    or_(table.last_heard.is_(None), new.last_heard > table.last_heard),
                    new.last_heard,
                ),
                else_=table.last_heard,
            ),
        },
    )
    rows = [
        {"id": key, "first_heard": first, "last_heard": last}
        for key, (first, last) in sorted(beacons.items())
    ]
    session.execute(statement, rows)


_WRITERS = {
    "gateways": lambda session, chunk: _upsert(session, Gateway, "last_ip", chunk),
    "badges": lambda session, chunk: _upsert(session, Badge, "last_gateway_id", chunk),
    "beacons": lambda session, chunk: _upsert_beacons(session, chunk),
}
