"""LabelledImporter: store a labelled-readings CSV as readings and training runs.

The rows are taken as they come (a stream: nothing holds the whole file) in
chunks; each chunk is one write transaction: its rooms created, its new
readings inserted in one executemany, and the runs that ended within it.
Per chunk rather than per file so that, on SQLite, the writer lock is held
for a fraction of a second at a time (live ingest keeps going during a long
import) and memory stays bounded. A crash mid-way leaves whole chunks
behind, and a re-run completes it: readings already there and identical runs
are recognised and skipped, so importing a file twice adds nothing.

Stretches: per badge, consecutive labelled rows in one room become one
completed run, [first timestamp, last timestamp + 1 s), ended earlier at the
next row of the badge if that comes sooner. A stretch is broken by a row in
another room, an unlabelled row, a gap longer than ``max_gap`` or a row that
goes back in time. A stretch still open at a chunk's end is carried over,
so runs do not depend on the chunk size.
"""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from ..db import Database, utcnow
from ..ingest.models import Reading
from ..ingest.schemas import IDENTIFIER, fingerprint
from ..registry.models import Room, Site
from .csvio import LabelledRow, RowError, format_timestamp
from .models import TrainingRun
from .services import lock_badges

GATEWAY_ID = "import"
CHUNK_ROWS = 5000
MAX_GAP = datetime.timedelta(seconds=60)
ONE_SECOND = datetime.timedelta(seconds=1)
# As for live readings (stethoscope.ingest.max_clock_skew_s): a run ending
# in the future would block the badge's live runs until then.
MAX_CLOCK_SKEW = datetime.timedelta(seconds=300)
ERRORS_KEPT = 50

INSERT_READINGS = insert(Reading.__table__)
INSERT_RUNS = insert(TrainingRun.__table__)


class ImportRefused(Exception):
    """The import cannot start (e.g. no such site); nothing was written."""


@dataclass
class ImportSummary:
    rows: int = 0
    readings_created: int = 0
    readings_existing: int = 0
    runs_created: int = 0
    runs_existing: int = 0
    rooms_created: list[str] = field(default_factory=list)
    error_count: int = 0
    # The first ERRORS_KEPT errors, in the order found; only counted beyond.
    errors: list[RowError] = field(default_factory=list)

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(error)

    def as_json(self) -> dict:
        return {
            "rows": self.rows,
            "readings_created": self.readings_created,
            "readings_existing": self.readings_existing,
            "runs_created": self.runs_created,
            "runs_existing": self.runs_existing,
            "rooms_created": self.rooms_created,
            "errors": self.error_count,
        }


@dataclass
class _Stretch:
    badge_id: str
    room_id: str
    started_at: datetime.datetime
    last_at: datetime.datetime
    first_line: int
    last_line: int
    ended_at: datetime.datetime | None = None


class _Rooms:
    """Room cells → room ids: by id, then by name within the site."""

    def __init__(self, session: Session, site_id: str | None, create: bool):
        self.site_id = site_id
        self.create = create
        self._by_id: dict[str, str | None] = {}  # id → its site id
        self._by_name: dict[str, list[str]] = {}
        if site_id is not None:
            for room in session.scalars(select(Room).where(Room.site_id == site_id)):
                self._by_id[room.id] = site_id
                self._by_name.setdefault(room.name, []).append(room.id)
        self._resolved: dict[str, str | RowError] = {}

    def resolve(
        self, session: Session, cell: str, line: int, created: list[str]
    ) -> str | RowError:
        """The room id for ``cell``; a RowError (line filled in by the caller)."""
        known = self._resolved.get(cell)
        if known is None:
            known = self._resolve(session, cell, created)
            # An error is remembered too: one lookup per distinct cell.
            self._resolved[cell] = known
        if isinstance(known, RowError):
            return RowError(line, known.field, known.message)
        return known

    def _resolve(self, session: Session, cell: str, created: list[str]):
        if cell not in self._by_id:
            self._by_id[cell] = session.scalar(
                select(Room.site_id).where(Room.id == cell)
            )
        owner = self._by_id[cell]
        if owner is not None and self.site_id in (None, owner):
            return cell
        named = self._by_name.get(cell, [])
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            return RowError(
                0,
                "room",
                f"{cell!r} names {len(named)} rooms of site {self.site_id} "
                f"({', '.join(sorted(named))}): use the room id",
            )
        if owner is not None:
            return RowError(
                0, "room", f"room {cell} belongs to site {owner}, not {self.site_id}"
            )
        if not self.create:
            where = f" of site {self.site_id}" if self.site_id else ""
            hint = " (--create-rooms creates it)" if self.site_id else ""
            return RowError(0, "room", f"no room {cell!r}{where}{hint}")
        if not IDENTIFIER.fullmatch(cell):
            return RowError(
                0,
                "room",
                f"cannot create room {cell!r}: an id is 1-64 printable ASCII "
                "characters without spaces",
            )
        session.add(Room(id=cell, site_id=self.site_id, name=cell))
        session.flush()
        self._by_id[cell] = self.site_id
        self._by_name[cell] = [cell]
        created.append(cell)
        return cell


@dataclass
class LabelledImporter:
    """Import labelled rows (from stethoscope.labels.csvio.read_rows)."""

    database: Database
    _: KW_ONLY
    actor: str
    site_id: str | None = None
    create_rooms: bool = False
    chunk_rows: int = CHUNK_ROWS
    max_gap: datetime.timedelta = MAX_GAP
    max_clock_skew: datetime.timedelta = MAX_CLOCK_SKEW
    clock: Callable[[], datetime.datetime] = utcnow

    def __post_init__(self):
        if self.create_rooms and self.site_id is None:
            raise ImportRefused("--create-rooms needs --site: rooms belong to a site")

    def check_site(self) -> None:
        """Raise ImportRefused when the site does not exist."""
        if self.site_id is None:
            return
        with self.database.session(write=False) as session:
            if session.get(Site, self.site_id) is None:
                raise ImportRefused(f"no site {self.site_id!r}")

    def run(
        self,
        rows: Iterable[LabelledRow | RowError],
        progress: Callable[[int], None] | None = None,
    ) -> ImportSummary:
        """Import every row; bad rows are reported in the summary, not raised."""
        self.check_site()
        summary = ImportSummary()
        with self.database.session(write=False) as session:
            rooms = _Rooms(session, self.site_id, self.create_rooms)
        stretches: dict[str, _Stretch] = {}
        chunk: list[LabelledRow] = []
        latest = self.clock() + self.max_clock_skew
        for row in rows:
            summary.rows += 1
            if isinstance(row, RowError):
                summary.add_error(row)
            elif row.observed_at > latest:
                summary.add_error(
                    RowError(
                        row.line,
                        "timestamp",
                        f"{format_timestamp(row.observed_at)} is in the future; "
                        "check the recording's clock",
                    )
                )
            else:
                chunk.append(row)
            if summary.rows % self.chunk_rows == 0:
                self._store(chunk, rooms, stretches, summary, final=False)
                chunk = []
                if progress is not None:
                    progress(summary.rows)
        self._store(chunk, rooms, stretches, summary, final=True)
        if progress is not None:
            progress(summary.rows)
        return summary

    def _store(self, chunk, rooms, stretches, summary, *, final: bool) -> None:
        with self.database.session(write=True) as session, session.begin():
            labelled = []
            for row in chunk:
                room_id = None
                if row.room is not None:
                    room_id = rooms.resolve(
                        session, row.room, row.line, summary.rooms_created
                    )
                    if isinstance(room_id, RowError):
                        summary.add_error(room_id)
                        continue
                labelled.append((row, room_id))
            self._insert_readings(session, [row for row, _ in labelled], summary)
            ended = self._follow_stretches(labelled, stretches)
            if final:
                ended.extend(stretches.values())
                stretches.clear()
            self._insert_runs(session, ended, summary)

    def _insert_readings(self, session: Session, rows, summary) -> None:
        if not rows:
            return
        spans: dict[str, list[datetime.datetime]] = {}
        for row in rows:
            span = spans.setdefault(row.badge_id, [row.observed_at, row.observed_at])
            span[0] = min(span[0], row.observed_at)
            span[1] = max(span[1], row.observed_at)
        # One query for the chunk: the stored readings of its badges within
        # the times it covers. The (badge, observed_at) index answers it.
        stored = Reading.__table__.c
        there = {
            (badge_id, observed_at, print_)
            for badge_id, observed_at, print_ in session.execute(
                select(stored.badge_id, stored.observed_at, stored.fingerprint).where(
                    or_(
                        *(
                            and_(
                                stored.badge_id == badge_id,
                                stored.observed_at.between(first, last),
                            )
                            for badge_id, (first, last) in spans.items()
                        )
                    )
                )
            )
        }
        now = self.clock()
        new = []
        for row in rows:
            print_ = fingerprint(row.badge_id, row.beacons)
            key = (row.badge_id, row.observed_at, print_)
            if key in there:
                summary.readings_existing += 1
                continue
            there.add(key)  # the same row twice in one chunk
            new.append(
                {
                    "badge_id": row.badge_id,
                    "gateway_id": GATEWAY_ID,
                    "received_at": now,
                    "observed_at": row.observed_at,
                    "badge_strength": None,
                    "beacons": row.beacons,
                    "fingerprint": print_,
                }
            )
        if new:
            session.execute(INSERT_READINGS, new)
        summary.readings_created += len(new)

    def _follow_stretches(self, labelled, stretches) -> list[_Stretch]:
        """Advance each badge's stretch over the chunk; the stretches it ended."""
        ended = []
        for row, room_id in labelled:
            badge_id, moment = row.badge_id, row.observed_at
            stretch = stretches.get(badge_id)
            if stretch is not None and (
                room_id != stretch.room_id
                or moment < stretch.last_at
                or moment - stretch.last_at > self.max_gap
            ):
                if stretch.last_at < moment < stretch.last_at + ONE_SECOND:
                    stretch.ended_at = moment
                ended.append(stretches.pop(badge_id))
                stretch = None
            if room_id is None:
                continue
            if stretch is None:
                stretches[badge_id] = _Stretch(
                    badge_id, room_id, moment, moment, row.line, row.line
                )
            else:
                stretch.last_at = moment
                stretch.last_line = row.line
        return ended

    def _insert_runs(self, session: Session, ended: list[_Stretch], summary) -> None:
        if not ended:
            return
        for stretch in ended:
            if stretch.ended_at is None:
                stretch.ended_at = stretch.last_at + ONE_SECOND
        # LabelService's per-badge lock: a run started from the dashboard
        # meanwhile cannot slip in between the overlap check and the insert.
        lock_badges(session, {stretch.badge_id for stretch in ended})
        runs = TrainingRun.__table__.c
        first = min(stretch.started_at for stretch in ended)
        last = max(stretch.ended_at for stretch in ended)
        # The runs these could collide with, in one query.
        existing: dict[str, list[tuple]] = {}
        for run in session.execute(
            select(
                runs.id,
                runs.badge_id,
                runs.room_id,
                runs.started_at,
                runs.ended_at,
                runs.cancelled_at,
            ).where(
                runs.badge_id.in_({stretch.badge_id for stretch in ended}),
                runs.started_at < last,
                or_(runs.ended_at.is_(None), runs.ended_at > first),
            )
        ):
            existing.setdefault(run.badge_id, []).append(tuple(run))
        now = self.clock()
        new = []
        for stretch in ended:
            key = (stretch.room_id, stretch.started_at, stretch.ended_at)
            others = existing.setdefault(stretch.badge_id, [])
            if any(other[2:5] == key for other in others):
                summary.runs_existing += 1
                continue
            clash = next(
                (
                    other
                    for other in others
                    if other[5] is None
                    and other[3] < stretch.ended_at
                    and (other[4] is None or other[4] > stretch.started_at)
                ),
                None,
            )
            if clash is not None:
                summary.add_error(
                    RowError(
                        stretch.first_line,
                        "room",
                        f"the run of {stretch.badge_id} in {stretch.room_id} "
                        f"overlaps training run "
                        f"{'#' + str(clash[0]) if clash[0] else 'of this file'} "
                        f"in {clash[2]} from {clash[3].isoformat()}; "
                        "its readings are imported, the run is not",
                        last_line=stretch.last_line,
                    )
                )
                continue
            others.append((None, stretch.badge_id, *key, None))
            new.append(
                {
                    "badge_id": stretch.badge_id,
                    "room_id": stretch.room_id,
                    "started_at": stretch.started_at,
                    "ended_at": stretch.ended_at,
                    "cancelled_at": None,
                    "created_by": self.actor,
                    "created_at": now,
                    "source": "import",
                }
            )
        if new:
            session.execute(INSERT_RUNS, new)
        summary.runs_created += len(new)
