"""Where badges are: the locating service behind the JSON API.

``LocatingService`` reads readings and the registry in the request's
transaction and hands them to the one ``Locator`` (``locator.py``), so the
server answers with the code ``stethoscope-evaluate`` measures. What it
keeps between requests lives in per-process objects:

- ``HouseFacts``: per site and model version, the room names, the doors
  (``Room.adjacent``), the dead beacons, the site's timezone and when the
  model was trained and activated, with the Locator built from them, for
  ``FACTS_SECONDS``. A location is then one indexed query (the badge's
  window of readings, joined to its badge and gateway rows for the site).
- ``ProbabilityCache`` (held by ``HouseFacts``): each live reading's raw
  room probabilities per model version and dead beacons, a bounded LRU, so
  a badge polled every second has only its new readings predicted, not its
  whole window again (scikit-learn's per-call overhead on a few rows was
  ~40 % of a location request; docs/benchmarks.md "Locating speed").
- ``HouseFacts.located``: ``Locator.now`` of each live window, keyed by
  its readings and everything else the answer depends on (model version,
  dead beacons, house, priors). A window changes only when a reading
  comes or leaves, so a location or occupancy asked again within those
  seconds runs no filter. The answer is the one computed afresh: the key
  holds all it is made of (tests/functional/test_locating.py).
- ``DayCache``: finished days of history (before the site's today), an LRU
  keyed by everything the answer depends on, so a day looked at again
  (a chart redrawn, stays after history) is not predicted again; with the
  day, its readings' times in the site's clock, formatted once, and the
  JSON bodies of the answers given of it, so the same question again is
  answered with those bytes (still audited). Bounded by days and by bytes.

A beacon is *dead* when its ``last_heard`` (written by the activity flush)
is older than ``beacon_dead_seconds``; a beacon never heard by this server
(no row, or no ``last_heard``: a model trained on imported readings) is not
called dead, since nothing says it is.
"""

import copy
import datetime
import logging
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import orjson
from sqlalchemy import Text, bindparam, cast, func, select, text, type_coerce
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.types import NullType

from ..db import utcnow
from ..endpoints import jsonable
from ..errors import NotFound, Unavailable, ValidationError
from ..ingest.models import DAY_COVERED, DAY_UNCOVERED, Reading
from ..learning.models import ModelActivation, ModelVersion
from ..learning.services import ActiveModels, LoadedModel
from ..registry.models import Badge, Beacon, Gateway, Room, Site
from ..retention.archive import archived_day
from ..singletons import ACTIVE_MODELS, DATABASE
from . import schemas
from .locator import History, Locator

log = logging.getLogger(__name__)

# How long a process trusts what it read of a site's house (rooms, doors,
# dead beacons): an admin's change shows within this, and a busy location
# endpoint reads them once per period instead of three queries a request.
FACTS_SECONDS = 5.0
# Readings whose probabilities a process keeps: the live windows (120 s,
# one reading every 5 s: 24 a badge) of about 800 badges, ~10 MB at 40
# rooms.
PROBABILITY_CACHE_READINGS = 20_000
# Live windows whose ``Locator.now`` a process keeps (``HouseFacts.located``):
# a badge's window changes when a reading comes or goes, about twice in
# its 5 s, so a board polling occupancy every second, and clients polling
# a location, find most windows as they left them. A window once changed
# never comes back: about one a badge (of 800) is all that is ever asked
# again, and each keeps ~80 small tuples the garbage collector walks.
LOCATED_WINDOWS = 1000
# A site without an active model gets one when an admin activates it: a
# client asking again in a minute has lost nothing.
NO_MODEL_RETRY_SECONDS = 60


@dataclass(frozen=True)
class LocatingSettings:
    window_seconds: int = 120
    recent_seconds: int = 60
    beacon_dead_seconds: int = 1800
    history_cache_days: int = 512
    day_cache_mb: int = 128

    @classmethod
    def from_settings(cls, settings: Mapping) -> "LocatingSettings":
        prefix = "stethoscope.locating."
        return cls(
            window_seconds=settings[prefix + "window_seconds"],
            recent_seconds=settings[prefix + "recent_seconds"],
            beacon_dead_seconds=settings[prefix + "beacon_dead_seconds"],
            history_cache_days=settings[prefix + "history_cache_days"],
            day_cache_mb=settings[prefix + "day_cache_mb"],
        )


@dataclass(frozen=True)
class SiteFacts:
    """What locating needs of a site besides readings, read together."""

    site_id: str
    timezone: ZoneInfo
    room_names: dict[str, str]  # every room of the site, by id
    adjacency: dict[str, set[str]]
    dead_beacons: frozenset[str]
    model: LoadedModel
    model_info: schemas.ModelInfo
    locator: Locator

    @cached_property
    def house(self) -> Hashable:
        """Rooms, names and doors as one hashable value (a cache key part;
        made once: every location request keys its window with it)."""
        return (
            frozenset(self.room_names.items()),
            frozenset(
                (room, frozenset(others)) for room, others in self.adjacency.items()
            ),
        )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # The registry checks timezones when they are set; a zone dropped
        # from the system's database since is shown in UTC, not a 500.
        log.warning("unknown timezone %r: using UTC", name)
        return ZoneInfo("UTC")


def iso(moment: datetime.datetime | float, zone: ZoneInfo) -> str:
    """ISO 8601 in the site's clock (its UTC offset of that moment)."""
    if isinstance(moment, int | float):
        return datetime.datetime.fromtimestamp(moment, zone).isoformat()
    return moment.astimezone(zone).isoformat()


# How often ``local_times`` asks the zone for its offset across the span of
# the times: clocks change at most once in far longer.
OFFSET_SAMPLE_SECONDS = 900.0


def local_times(seconds: Sequence[float], zone: ZoneInfo) -> tuple[str, ...]:
    """``iso`` of each of ``seconds`` (epoch), the same strings, made by
    numpy when the zone's offset is one over their span (a day's 17,280
    times one at a time were ~35 ms, an eighth of a cold history); one at
    a time on the day the clocks change."""
    moments = np.asarray(seconds, dtype=float)
    if not len(moments):
        return ()
    low, high = float(moments.min()), float(moments.max())
    samples = np.linspace(low, high, 2 + int((high - low) // OFFSET_SAMPLE_SECONDS))
    offsets = {
        datetime.datetime.fromtimestamp(moment, zone).utcoffset()
        for moment in samples.tolist()
    }
    if len(offsets) != 1:
        return tuple(iso(moment, zone) for moment in moments.tolist())
    [offset] = offsets
    first = datetime.datetime.fromtimestamp(low, zone)
    suffix = first.isoformat()[len(first.replace(tzinfo=None).isoformat()) :]
    # Microseconds as datetime.fromtimestamp rounds them: the fraction of
    # the whole seconds, scaled, to the nearest even (both round half-even).
    whole = np.trunc(moments)
    micros = whole.astype(np.int64) * 1_000_000 + np.rint(
        (moments - whole) * 1e6
    ).astype(np.int64)
    local = micros + offset // datetime.timedelta(microseconds=1)
    texts = np.datetime_as_string(local.astype("datetime64[us]"), unit="us")
    # isoformat leaves out a fraction of 0.
    return tuple(
        text[:19] + suffix if exact else text + suffix
        for text, exact in zip(
            texts.tolist(), (micros % 1_000_000 == 0).tolist(), strict=True
        )
    )


def dead_beacons(
    session: Session,
    vocabulary: Iterable[str],
    now: datetime.datetime,
    dead_seconds: int,
) -> frozenset[str]:
    """The beacons of ``vocabulary`` last heard more than ``dead_seconds`` ago."""
    cutoff = now - datetime.timedelta(seconds=dead_seconds)
    return frozenset(
        session.scalars(
            select(Beacon.id).where(
                Beacon.id.in_(list(vocabulary)), Beacon.last_heard < cutoff
            )
        )
    )


class ProbabilityCache:
    """A bounded, thread-safe LRU of readings' raw room probabilities.

    A row depends on the model version, the dead beacons it was predicted
    with and the reading alone (``Locator.probabilities`` predicts each
    row on its own), so it is kept under exactly those; the reading's
    badge and time are part of the key, so an id reused after a prune
    or a restore is a new reading.
    """

    def __init__(self, size: int = PROBABILITY_CACHE_READINGS):
        self.size = size
        self._lock = threading.Lock()
        self._rows: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def probabilities(
        self, locator: Locator, version_id: int, rows: Sequence["_Row"]
    ) -> np.ndarray:
        """(len(rows), rooms) as ``locator.probabilities`` gives them; only
        the rows not cached are predicted, in one call."""
        model = (version_id, locator.dead_beacons)
        keys = [(model, row.id, row.badge_id, row.observed_at) for row in rows]
        with self._lock:
            found = [self._rows.get(key) for key in keys]
            for key, row in zip(keys, found, strict=True):
                if row is not None:
                    self._rows.move_to_end(key)
        missing = [i for i, row in enumerate(found) if row is None]
        if missing:
            fresh = locator.probabilities([rows[i].beacons for i in missing])
            with self._lock:
                for i, row in zip(missing, fresh, strict=True):
                    found[i] = self._rows[keys[i]] = row.copy()
                while len(self._rows) > self.size:
                    self._rows.popitem(last=False)
        if not found:
            return np.zeros((0, len(locator.rooms)))
        return np.vstack(found)

    def __len__(self) -> int:
        return len(self._rows)


class HouseFacts:
    """Each site's facts for a model version, read at most every ``ttl``
    seconds per process (thread-safe; two threads may both read once), and
    the live readings' probabilities under it (``probabilities``)."""

    def __init__(
        self,
        *,
        dead_seconds: int,
        ttl: float = FACTS_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        probabilities: ProbabilityCache | None = None,
    ):
        self.dead_seconds = dead_seconds
        self.ttl = ttl
        self.monotonic = monotonic
        self.probabilities = probabilities or ProbabilityCache()
        self.located = LruCache(LOCATED_WINDOWS)
        self._lock = threading.Lock()
        self._facts: dict[str, tuple[float, SiteFacts]] = {}

    def get(
        self, session: Session, model: LoadedModel, now: datetime.datetime
    ) -> SiteFacts:
        """The facts of ``model``'s site, read anew when older than the ttl
        or of another model version."""
        with self._lock:
            found = self._facts.get(model.site_id)
        if found is not None:
            read_at, facts = found
            fresh = self.monotonic() - read_at < self.ttl
            if fresh and facts.model.version_id == model.version_id:
                return facts
        facts = self.read(session, model, now)
        with self._lock:
            self._facts[model.site_id] = (self.monotonic(), facts)
        return facts

    def read(
        self, session: Session, model: LoadedModel, now: datetime.datetime
    ) -> SiteFacts:
        site = session.get(Site, model.site_id)
        zone = _zone(site.timezone) if site is not None else ZoneInfo("UTC")
        rooms = session.scalars(
            select(Room)
            .where(Room.site_id == model.site_id)
            .options(selectinload(Room.adjacent))
            .order_by(Room.id)
        ).all()
        room_names = {room.id: room.name for room in rooms}
        # Only rooms with a door: the Locator seals a room named with none,
        # and a registry without doors yet must constrain nothing.
        adjacency = {
            room.id: {other.id for other in room.adjacent}
            for room in rooms
            if room.adjacent
        }
        dead = dead_beacons(
            session, model.model.vocabulary.beacons, now, self.dead_seconds
        )
        trained_at = session.scalar(
            select(ModelVersion.created_at).where(ModelVersion.id == model.version_id)
        )
        activated_at = session.scalar(
            select(func.max(ModelActivation.activated_at)).where(
                ModelActivation.site_id == model.site_id,
                ModelActivation.model_version_id == model.version_id,
            )
        )
        return SiteFacts(
            site_id=model.site_id,
            timezone=zone,
            room_names=room_names,
            adjacency=adjacency,
            dead_beacons=dead,
            model=model,
            model_info=schemas.ModelInfo(
                version_id=model.version_id,
                version=model.version,
                algorithm=model.algorithm,
                trained_at=iso(trained_at, zone) if trained_at else None,
                activated_at=iso(activated_at, zone) if activated_at else None,
            ),
            locator=Locator(
                model.model,
                room_names,
                adjacency=adjacency or None,
                dead_beacons=dead,
            ),
        )


# A float object's size: a history's seconds and probabilities are each
# their own float.
FLOAT_BYTES = sys.getsizeof(0.0)


@dataclass
class Day:
    """A badge-day's history and, once asked for, the times of its readings
    in the site's clock (a finished day's are made once: formatting 17,280
    times was most of a cached history request); once kept
    (``DayCache.put``), its key and the JSON bodies of the answers given of
    it (``DayCache.keep``)."""

    history: History
    zone: ZoneInfo
    key: Hashable | None = None
    bodies: dict[Hashable, bytes] = field(default_factory=dict)
    _times: tuple[str, ...] | None = None
    _times_nbytes: int = 0

    @property
    def times(self) -> tuple[str, ...]:
        if self._times is None:
            # Two threads may both format them: the same tuple either way.
            times = local_times(self.history.seconds, self.zone)
            self._times_nbytes = sys.getsizeof(times) + sum(map(sys.getsizeof, times))
            self._times = times
        return self._times

    @property
    def nbytes(self) -> int:
        """The memory the day holds: its history's per-reading tuples and
        floats (room indexes are small ints Python shares), its times once
        made, its bodies (tests/unit/locating: within a few per cent of
        what tracemalloc counts)."""
        history = self.history
        return (
            sys.getsizeof(history.seconds)
            + sys.getsizeof(history.room_index)
            + sys.getsizeof(history.probability)
            + 2 * FLOAT_BYTES * len(history)
            + self._times_nbytes
            + sum(map(sys.getsizeof, self.bodies.values()))
        )


class LruCache:
    """A bounded, thread-safe LRU of values that never change once made."""

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable):
        with self._lock:
            found = self._values.get(key)
            if found is not None:
                self._values.move_to_end(key)
            return found

    def put(self, key: Hashable, value) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def __len__(self) -> int:
        return len(self._values)


class DayCache:
    """Finished days (``Day``) by everything their answer depends on: a
    thread-safe LRU of at most ``size`` days and ``max_bytes`` of them
    (``Day.nbytes``, answer bodies included). A full day of 17,280 readings
    is ~2.7 MB, ~3.7 MB with its history body: a count alone let the
    default 512 days hold ~1.4 GB."""

    def __init__(self, size: int, max_bytes: int = 128 << 20):
        self.size = size
        self.max_bytes = max_bytes
        self.nbytes = 0  # what the kept days hold, as last counted
        self._lock = threading.Lock()
        self._days: OrderedDict[Hashable, tuple[Day, int]] = OrderedDict()

    def get(self, key: Hashable) -> Day | None:
        with self._lock:
            found = self._days.get(key)
            if found is None:
                return None
            self._days.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, day: Day) -> None:
        """Keep ``day`` under ``key`` (the least recently used days out)."""
        day.key = key
        with self._lock:
            self._count(key, day)

    def keep(self, day: Day, options: Hashable, body: bytes) -> None:
        """Keep ``body``, the answer to ``options`` of a kept ``day``, with
        the day: counted in its bytes, out with it."""
        with self._lock:
            found = self._days.get(day.key) if day.key is not None else None
            if found is not None and found[0] is day:
                day.bodies[options] = body
                self._count(day.key, day)

    def _count(self, key: Hashable, day: Day) -> None:
        # Under the lock: (re)count the day as the newest, then make room.
        old = self._days.pop(key, None)
        if old is not None:
            self.nbytes -= old[1]
        nbytes = day.nbytes
        self._days[key] = (day, nbytes)
        self.nbytes += nbytes
        while self._days and (
            len(self._days) > self.size or self.nbytes > self.max_bytes
        ):
            _key, (_day, evicted) = self._days.popitem(last=False)
            self.nbytes -= evicted

    def days(self) -> list[Day]:
        """The kept days, least recently used first."""
        with self._lock:
            return [day for day, _nbytes in self._days.values()]

    def __len__(self) -> int:
        return len(self._days)


def _no_audit(action: str, *, target: str | None = None, details=None) -> None:
    pass


class _Row(NamedTuple):
    """One reading as locating reads it, with the sites it may belong to."""

    badge_id: str
    id: int
    gateway_id: str
    observed_at: datetime.datetime
    beacons: dict[str, int]
    badge_site: str | None
    gateway_site: str | None
    wearer: str | None
    seconds: float  # observed_at as epoch seconds


# observed_at and beacons as the driver gives them (``_utc``, ``_beacons``):
# the columns' own result processing (a regular expression per SQLite
# time, json per document, a Python call per value) was a third of a
# day's history and of occupancy. Read through the session's connection
# (Core), not the ORM's execute: these are columns, never objects; and
# fetched all at once (iterating a result fetches one row a call).
_RAW = NullType()
# Text on both databases (PostgreSQL's jsonb too), decoded by orjson.
_BEACONS_TEXT = cast(Reading.beacons, Text)


def _utc(value: str | datetime.datetime) -> datetime.datetime:
    """A stored UTC time as read raw: SQLite's naive UTC text, PostgreSQL's
    aware datetime; the instant ``UTCDateTime`` would give."""
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def _beacons(value: str) -> dict[str, int]:
    """A reading's beacons from ``_BEACONS_TEXT``."""
    return orjson.loads(value)


def _day_readings(rows: Sequence[tuple]) -> list[tuple[float, dict[str, int]]]:
    """A day's ``(observed_at, beacons text)`` rows as the Locator reads
    them, ``(epoch seconds, beacons)``: the times at once (SQLite's text by
    numpy), the documents in one orjson call (one call per reading and
    ``_utc`` per time were 40 ms of a day's 17,280 readings)."""
    if not rows:
        return []
    times, texts = zip(*rows, strict=True)
    return list(
        zip(
            _epoch_seconds(times),
            orjson.loads("[" + ",".join(texts) + "]"),
            strict=True,
        )
    )


def _epoch_seconds(times: Sequence[str | datetime.datetime]) -> list[float]:
    """``_utc(time).timestamp()`` of each of ``times``, the same floats."""
    # One column of one driver: every value is of the first's type.
    if times and isinstance(times[0], str):
        try:
            with warnings.catch_warnings():
                # numpy warns of, and ignores, an offset: such text is
                # none of SQLite's naive UTC and is read one at a time.
                warnings.simplefilter("error")
                micros = np.array(times, dtype="datetime64[us]").astype(np.int64)
        except (ValueError, UserWarning):
            pass
        else:
            # Whole microseconds over 10**6, correctly rounded like
            # timedelta.total_seconds(): exact below 2**53 microseconds.
            return (micros / 1e6).tolist()
    return [_utc(moment).timestamp() for moment in times]


# The readings of a live window with their badge's and gateway's rows, built
# once (a location request is a few milliseconds; building the statement
# was a tenth of it).
_WINDOW = (
    select(
        Reading.badge_id,
        Reading.id,
        Reading.gateway_id,
        type_coerce(Reading.observed_at, _RAW),
        _BEACONS_TEXT,
        Badge.site_id,
        Gateway.site_id,
        Badge.wearer,
    )
    .outerjoin(Badge, Badge.id == Reading.badge_id)
    .outerjoin(Gateway, Gateway.id == Reading.gateway_id)
    .order_by(Reading.observed_at, Reading.id)
)
_BADGE_WINDOW = _WINDOW.where(
    Reading.badge_id == bindparam("badge_id"),
    Reading.observed_at >= bindparam("since"),
)
_SITE_WINDOW = _WINDOW.where(Reading.observed_at >= bindparam("since"))


# A badge-day, only what the Locator reads (a day is 17,280 rows: the joins
# and columns of a window would be paid for each), in two parts that
# name the partial indexes' predicates literally (ingest/models.py).
_DAY = (
    select(type_coerce(Reading.observed_at, _RAW), _BEACONS_TEXT, Reading.id)
    .where(
        Reading.badge_id == bindparam("badge_id"),
        Reading.observed_at >= bindparam("start"),
        Reading.observed_at < bindparam("end"),
    )
    .order_by(Reading.observed_at, Reading.id)
)
_DAY_COVERED = _DAY.where(text(DAY_COVERED))
_DAY_UNCOVERED = _DAY.where(text(DAY_UNCOVERED))


def _site_of(rows: Sequence[_Row]) -> str | None:
    # The badge's own site (the registry) first; else where its latest
    # reading was heard.
    return rows[-1].badge_site or rows[-1].gateway_site


def _with_probabilities(locator: Locator, rows):
    """``locator`` answering ``probabilities`` with ``rows`` already predicted.

    An adapter for the probability cache and occupancy: rows already
    predicted (every badge's window in one call, or kept from earlier
    requests) are given to the same ``Locator.now`` a location request
    runs (the core has no batched ``now``). A forest's or a linear model's
    rows do not depend on the other rows of the call, so the figures are
    those of ``Locator.now`` predicting its own.
    """
    view = copy.copy(locator)
    view.probabilities = lambda beacons: rows
    return view


def _priors(priors: Sequence[tuple[str, float]] | None) -> dict[str, float] | None:
    return None if priors is None else dict(priors)


def _json(answer) -> bytes:
    """``answer`` as the JSON renderer writes it (stethoscope.ops.renderers)."""
    return orjson.dumps(answer, default=jsonable)


class LocatingService:
    """Locations, history, stays and occupancy of badges."""

    def __init__(
        self,
        session: Session,
        active_models: ActiveModels,
        facts: HouseFacts,
        days: DayCache,
        settings: LocatingSettings,
        *,
        audit: Callable | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
    ):
        self.session = session
        self.active_models = active_models
        self.facts = facts
        self.days = days
        self.settings = settings
        self.audit = audit or _no_audit
        self.clock = clock

    # -- reading -------------------------------------------------------------

    def _rows(self, query, parameters: dict) -> list[_Row]:
        rows = []
        for (
            badge,
            id_,
            gateway,
            observed,
            beacons,
            b_site,
            g_site,
            wearer,
        ) in self.session.connection().execute(query, parameters).all():
            observed = _utc(observed)
            rows.append(
                _Row(
                    badge,
                    id_,
                    gateway,
                    observed,
                    _beacons(beacons),
                    b_site,
                    g_site,
                    wearer,
                    observed.timestamp(),
                )
            )
        return rows

    def _window(self, badge_id: str, now: datetime.datetime) -> list[_Row]:
        """The badge's readings of the live window, oldest first: one range
        query on ix_readings_badge_id_observed_at."""
        since = now - datetime.timedelta(seconds=self.settings.window_seconds)
        return self._rows(_BADGE_WINDOW, {"badge_id": badge_id, "since": since})

    def _model(self, site_id: str) -> LoadedModel:
        model = self.active_models.get(site_id)
        if model is None:
            error = self.active_models.status().get(site_id, {}).get("error")
            message = f"site {site_id} has no active model"
            if error:
                message += f" that can be loaded ({error})"
            raise Unavailable(message, retry_after=NO_MODEL_RETRY_SECONDS)
        return model

    def _facts(self, site_id: str, now: datetime.datetime) -> SiteFacts:
        return self.facts.get(self.session, self._model(site_id), now)

    def _probabilities(self, facts: SiteFacts, rows: Sequence[_Row]) -> np.ndarray:
        return self.facts.probabilities.probabilities(
            facts.locator, facts.model.version_id, rows
        )

    # -- now -----------------------------------------------------------------

    def location(
        self, badge_id: str, priors: Sequence[tuple[str, float]] | None = None
    ) -> schemas.Location:
        """Where ``badge_id`` is now: raw, Bayes (with ``priors``) and
        smoothed. NotFound when it sent nothing in ``recent_seconds``;
        Unavailable when its site has no active model; ValidationError
        naming ``priors`` for weights that say no room is possible."""
        now = self.clock()
        rows = self._window(badge_id, now)
        self._require_recent(badge_id, rows, now)
        site_id = _site_of(rows)
        if site_id is None:
            raise NotFound(
                f"badge {badge_id} is at no site: place it, or the gateway "
                f"{rows[-1].gateway_id} that hears it, at a site"
            )
        facts = self._facts(site_id, now)
        try:
            [located] = self._locate_many(facts, [rows], priors)
        except ValueError as exc:
            raise ValidationError("priors", str(exc)) from None
        return self._location(badge_id, facts, rows, located, now)

    def _require_recent(
        self, badge_id: str, rows: Sequence[_Row], now: datetime.datetime
    ) -> None:
        recent = now - datetime.timedelta(seconds=self.settings.recent_seconds)
        if not rows or rows[-1].observed_at < recent:
            raise NotFound(
                f"badge {badge_id} sent nothing in the last "
                f"{self.settings.recent_seconds} seconds"
            )

    @staticmethod
    def _location(badge_id, facts, rows, located, now) -> schemas.Location:
        zone, latest = facts.timezone, rows[-1]
        return schemas.Location(
            badge_id=badge_id,
            site_id=facts.site_id,
            room_id=located.room_id,
            room_name=located.room_name,
            probability=located.probability,
            since=iso(located.since, zone),
            unknown=located.unknown,
            reason=located.reason,
            raw=[tuple(room) for room in located.raw],
            bayes=(
                None if located.bayes is None else [tuple(r) for r in located.bayes]
            ),
            smoothed=[tuple(room) for room in located.smoothed],
            reading=schemas.LatestReading(
                id=latest.id,
                observed_at=iso(latest.observed_at, zone),
                gateway=latest.gateway_id,
                beacons=latest.beacons,
                imposter_beacons=list(located.imposter_beacons),
                age_seconds=round((now - latest.observed_at).total_seconds(), 3),
            ),
            model=facts.model_info,
            dead_beacons=list(located.dead_beacons),
        )

    def occupancy(self, site_id: str, *, with_wearers: bool) -> schemas.Occupancy:
        """Every badge of ``site_id`` heard in the recent window, by room;
        every room listed, occupied or not; the site's other badges apart.
        Each badge's room is what ``location`` says of it. Wearers only
        ``with_wearers`` (the caller may view history)."""
        now = self.clock()
        if self.session.get(Site, site_id) is None:
            raise NotFound(f"no site {site_id}")
        facts = self._facts(site_id, now)
        zone = facts.timezone
        window = now - datetime.timedelta(seconds=self.settings.window_seconds)
        recent = now - datetime.timedelta(seconds=self.settings.recent_seconds)
        by_badge: dict[str, list[_Row]] = {}
        # One query for the window of every badge (ix_readings_observed_at).
        for row in self._rows(_SITE_WINDOW, {"since": window}):
            by_badge.setdefault(row.badge_id, []).append(row)
        heard = {
            badge_id: rows
            for badge_id, rows in sorted(by_badge.items())
            if _site_of(rows) == site_id and rows[-1].observed_at >= recent
        }
        located = self._locate_many(facts, list(heard.values()))
        wearers = {}
        not_heard = []
        for badge_id, wearer, last_seen in self.session.execute(
            select(Badge.id, Badge.wearer, Badge.last_seen)
            .where(Badge.site_id == site_id, Badge.active)
            .order_by(Badge.id)
        ):
            wearers[badge_id] = wearer
            if badge_id not in heard:
                rows = by_badge.get(badge_id)
                last = rows[-1].observed_at if rows else last_seen
                not_heard.append((badge_id, last))
        for badge_id, rows in by_badge.items():
            # Heard in the window at this site, but not lately.
            if (
                badge_id not in heard
                and badge_id not in wearers
                and _site_of(rows) == site_id
            ):
                not_heard.append((badge_id, rows[-1].observed_at))
                wearers[badge_id] = rows[-1].wearer

        def wearer(badge_id: str, rows=None) -> str | None:
            if not with_wearers:
                return None
            return rows[-1].wearer if rows else wearers.get(badge_id)

        rooms = {
            room_id: schemas.RoomOccupancy(room_id=room_id, room_name=name, badges=[])
            for room_id, name in facts.room_names.items()
        }
        unknown = []
        for (badge_id, rows), where in zip(heard.items(), located, strict=True):
            occupant = schemas.Occupant(
                badge_id=badge_id,
                room_id=where.room_id,
                room_name=where.room_name,
                confidence=where.probability,
                since=iso(where.since, zone),
                unknown=where.unknown,
                reason=where.reason,
                last_heard=iso(rows[-1].observed_at, zone),
                wearer=wearer(badge_id, rows),
            )
            if where.unknown:
                unknown.append(occupant)
                continue
            if where.room_id not in rooms:  # a model room the registry lost
                rooms[where.room_id] = schemas.RoomOccupancy(
                    room_id=where.room_id, room_name=where.room_name, badges=[]
                )
            rooms[where.room_id].badges.append(occupant)
        return schemas.Occupancy(
            site_id=site_id,
            at=iso(now, zone),
            rooms=list(rooms.values()),
            unknown=unknown,
            not_heard=[
                schemas.Unheard(
                    badge_id=badge_id,
                    last_heard=iso(last, zone) if last else None,
                    wearer=wearer(badge_id),
                )
                for badge_id, last in sorted(not_heard)
            ],
            model=facts.model_info,
            dead_beacons=sorted(facts.dead_beacons),
        )

    def _locate_many(
        self,
        facts: SiteFacts,
        windows: list[list[_Row]],
        priors: Sequence[tuple[str, float]] | None = None,
    ) -> list:
        """``Locator.now`` of each window. A window located before (the same
        readings, model version, dead beacons, house and priors: all its
        answer depends on) is answered as it was; the others with one model
        call for their readings not predicted before."""
        context = (
            facts.model.version_id,
            facts.locator.dead_beacons,
            facts.house,
            None if priors is None else tuple(priors),
        )
        keys = [
            (context, tuple((row.id, row.badge_id, row.seconds) for row in rows))
            for rows in windows
        ]
        out = [self.facts.located.get(key) for key in keys]
        todo = [i for i, found in enumerate(out) if found is None]
        if not todo:
            return out
        probabilities = self._probabilities(
            facts, [row for i in todo for row in windows[i]]
        )
        weights, start = _priors(priors), 0
        for i in todo:
            rows = windows[i]
            part = probabilities[start : start + len(rows)]
            start += len(rows)
            out[i] = _with_probabilities(facts.locator, part).now(
                [(row.seconds, row.beacons) for row in rows], weights
            )
            self.facts.located.put(keys[i], out[i])
        return out

    # -- a day ------------------------------------------------------------------

    def _badge_site(self, badge_id: str) -> str:
        """The badge's site: its own, else its latest reading's gateway's."""
        own = self.session.scalar(select(Badge.site_id).where(Badge.id == badge_id))
        if own is not None:
            return own
        latest = self.session.execute(
            select(Gateway.site_id, Reading.gateway_id)
            .select_from(Reading)
            .outerjoin(Gateway, Gateway.id == Reading.gateway_id)
            .where(Reading.badge_id == badge_id)
            .order_by(Reading.observed_at.desc(), Reading.id.desc())
            .limit(1)
        ).first()
        if latest is None:
            raise NotFound(f"badge {badge_id} has no site and sent no reading")
        if latest[0] is None:
            raise NotFound(
                f"badge {badge_id} is at no site: place it, or the gateway "
                f"{latest[1]} that hears it, at a site"
            )
        return latest[0]

    def _day(
        self,
        badge_id: str,
        day: datetime.date | None,
        algorithm: str,
        priors: Sequence[tuple[str, float]] | None,
    ) -> tuple[SiteFacts, datetime.date, float, Day]:
        """The badge's history of ``day`` (the site's local day, default its
        today) with ``algorithm``; finished days come from the cache."""
        now = self.clock()
        facts = self._facts(self._badge_site(badge_id), now)
        zone = facts.timezone
        today = now.astimezone(zone).date()
        day = day or today
        # Midnight to midnight in the site's zone: 23 or 25 hours on the
        # days its clocks change.
        start = datetime.datetime.combine(day, datetime.time(), zone)
        end = datetime.datetime.combine(
            day + datetime.timedelta(days=1), datetime.time(), zone
        )
        start, end = start.astimezone(datetime.UTC), end.astimezone(datetime.UTC)
        # A beacon dead at any time of the day is dead for all of it: its
        # silence says nothing of where a badge was (features docstring).
        dead = dead_beacons(
            self.session,
            facts.model.model.vocabulary.beacons,
            min(end, now),
            self.facts.dead_seconds,
        )
        weights = _priors(priors)
        key = (
            badge_id,
            day,
            facts.model.version_id,
            algorithm,
            None if weights is None else tuple(sorted(weights.items())),
            dead,
            facts.house,
            zone.key,
        )
        finished = day < today
        found = self.days.get(key) if finished else None
        if found is None:
            readings = _day_readings(self._day_rows(badge_id, start, end))
            locator = facts.locator
            if dead != facts.dead_beacons:
                locator = Locator(
                    facts.model.model,
                    facts.room_names,
                    adjacency=facts.adjacency or None,
                    dead_beacons=dead,
                )
            try:
                history = locator.history(readings, algorithm, weights)
            except ValueError as exc:
                raise ValidationError("priors", str(exc)) from None
            found = Day(history, zone)
            if finished:
                self.days.put(key, found)
        return facts, day, start.timestamp(), found

    def _day_rows(
        self, badge_id: str, start: datetime.datetime, end: datetime.datetime
    ) -> list[tuple]:
        """``(observed_at, beacons text)`` of the badge's readings from
        ``start`` to ``end``, in time order: an index-only range of
        ix_readings_day_covered, and the rare readings too large for it."""
        connection = self.session.connection()
        parameters = {"badge_id": badge_id, "start": start, "end": end}
        rows = connection.execute(_DAY_COVERED, parameters).all()
        larger = connection.execute(_DAY_UNCOVERED, parameters).all()
        if larger:
            rows = sorted(rows + larger, key=lambda row: (row[0], row[2]))
        return [(observed_at, beacons) for observed_at, beacons, _id in rows]

    def history_body(
        self,
        badge_id: str,
        *,
        day: datetime.date | None = None,
        grain: int | None = None,
        offset: int = 0,
        algorithm: str | None = None,
        return_value: str = "room_id",
        priors: Sequence[tuple[str, float]] | None = None,
    ) -> bytes:
        """``[[time, room], …]`` of the badge's day as the API's JSON body
        (``schemas.History``): per reading, or the most likely room per
        ``grain``-second period; from period (or reading) ``offset`` on.
        Audited every time: who looked at whose day.

        A finished day's body is kept with the day, and the same question
        again is answered with it: building and serialising a day's 17,280
        pairs was most of a cached request, and their garbage a full
        collection a request."""
        if algorithm is None:
            algorithm = "smoothed" if priors is None else "bayes"
        elif priors is not None and algorithm != "bayes":
            raise ValidationError(
                "priors", f"priors apply to the bayes algorithm, not {algorithm}"
            )
        # A pruned day: its readings are gone, its stays were kept.
        if (archived := archived_day(self.session, badge_id, day)) is not None:
            answer = archived.history(
                grain=grain,
                offset=offset,
                algorithm=algorithm,
                return_value=return_value,
                priors=priors,
            )
            self.audit(
                "locating.history",
                target=badge_id,
                details={
                    "date": day.isoformat(),
                    "algorithm": algorithm,
                    "grain": grain,
                    "archived": True,
                },
            )
            return _json(schemas.History(answer))
        facts, day, day_start, found = self._day(badge_id, day, algorithm, priors)
        self.audit(
            "locating.history",
            target=badge_id,
            details={"date": day.isoformat(), "algorithm": algorithm, "grain": grain},
        )
        # The rest of the key: the day's holds everything else.
        options = ("history", grain, offset, return_value)
        if (body := found.bodies.get(options)) is not None:
            return body
        history = found.history
        if grain is None:
            names = history.rooms if return_value == "room_id" else history.room_names
            answer = list(
                zip(
                    found.times[offset:],
                    [names[index] for index in history.room_index[offset:]],
                    strict=True,
                )
            )
        else:
            zone = facts.timezone
            answer = [
                (iso(period.start, zone), getattr(period, return_value))
                for period in facts.locator.grains(history, grain, day_start)
                if round((period.start - day_start) / grain) >= offset
            ]
        body = _json(schemas.History(answer))
        self.days.keep(found, options, body)
        return body

    def stays(
        self, badge_id: str, *, day: datetime.date | None = None
    ) -> list[schemas.Stay]:
        """The badge's stays of ``day`` (smoothed history): room, from, to,
        readings, confidence. Audited like ``history``."""
        return self._stays(badge_id, day, False)

    def stays_body(self, badge_id: str, *, day: datetime.date | None = None) -> bytes:
        """``stays`` as the API's JSON body (``schemas.Stays``), a finished
        day's kept like ``history_body``'s. Audited every time."""
        return self._stays(badge_id, day, True)

    def _stays(self, badge_id, day, as_body):
        # A pruned day: its readings are gone, its stays were kept.
        if (archived := archived_day(self.session, badge_id, day)) is not None:
            self.audit(
                "locating.stays",
                target=badge_id,
                details={
                    "date": day.isoformat(),
                    "algorithm": "smoothed",
                    "archived": True,
                },
            )
            answer = [schemas.Stay(**stay) for stay in archived.stays()]
            return _json(schemas.Stays(answer)) if as_body else answer
        facts, day, _start, found = self._day(badge_id, day, "smoothed", None)
        self.audit(
            "locating.stays",
            target=badge_id,
            details={"date": day.isoformat(), "algorithm": "smoothed"},
        )
        options = ("stays",)
        if (body := found.bodies.get(options)) is not None:
            return body
        zone = facts.timezone
        answer = [
            schemas.Stay(
                room_id=stay.room_id,
                room_name=stay.room_name,
                from_=iso(stay.from_seconds, zone),
                to=iso(stay.to_seconds, zone),
                readings=stay.readings,
                confidence=stay.confidence,
            )
            for stay in facts.locator.stays(found.history)
        ]
        if not as_body:
            return answer
        body = _json(schemas.Stays(answer))
        self.days.keep(found, options, body)
        return body


def dead_beacon_report(
    database, active: ActiveModels, dead_seconds: int
) -> dict[str, dict]:
    """Per site with an active model: the version served and its dead
    beacons (one query per site)."""
    now = utcnow()
    sites = {}
    with database.session(write=False) as session:
        for site_id in active.status():
            model = active.get(site_id)
            if model is None:
                sites[site_id] = {"model_version": None, "dead_beacons": []}
                continue
            dead = dead_beacons(
                session, model.model.vocabulary.beacons, now, dead_seconds
            )
            sites[site_id] = {
                "model_version": model.version,
                "dead_beacons": sorted(dead),
            }
    return sites


class LocatingHealth:
    """The ``locating`` member of /health: each site's dead beacons.

    Like ops' database probe, the check runs on a thread of its own and is
    waited for ``deadline_s`` at most, so a stalled database never holds
    /health; checks made meanwhile wait for the one out. Without an answer
    in time, or after a database error, the member says ``unavailable``
    with the sites of the last answer.
    """

    def __init__(self, dead_seconds: int, deadline_s: float):
        self.dead_seconds = dead_seconds
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._out: threading.Event | None = None
        self._last: dict = {}
        self._ok = False

    def __call__(self, registry) -> dict:
        with self._lock:
            if self._out is None:
                self._out = threading.Event()
                threading.Thread(
                    target=self._check,
                    args=(registry, self._out),
                    name="stethoscope-locating-health",
                    daemon=True,
                ).start()
            done = self._out
        answered = done.wait(self.deadline_s)
        status = "ok" if answered and self._ok else "unavailable"
        return {"status": status, "sites": self._last}

    def _check(self, registry, done: threading.Event) -> None:
        try:
            self._last = dead_beacon_report(
                registry[DATABASE],
                registry[ACTIVE_MODELS],
                self.dead_seconds,
            )
            self._ok = True
        except Exception as exc:  # a health member never raises
            log.warning("cannot list dead beacons: %s", exc)
            self._ok = False
        finally:
            with self._lock:
                self._out = None
            done.set()
