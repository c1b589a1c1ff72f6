"""Gateways and badges as seen by ingest (SeenService); the house as admins
describe it (RegistryService)."""

import datetime
import functools
import re
import zoneinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..db import upsert_insert, utcnow
from ..ingest.schemas import IDENTIFIER
from .activity import Tally
from .models import Badge, Beacon, Gateway, Room, Site

# Which of ActivityTracker.pending()'s two dicts.
GATEWAYS, BADGES = 0, 1


class SeenService:
    """Lists gateways and badges with their traffic and health.

    What this process counted since its last flush is added to the stored
    rows, so a page never lags behind this process; other processes' counts
    appear within their flush interval. Reading never writes.

    The two are read while the tracker holds off its flushes, so that a
    flush landing between them neither counts its rows twice nor drops
    them (``ActivityTracker.flushes_held``).
    """

    def __init__(self, session: Session, tracker, online_seconds: int, clock=utcnow):
        self.session = session
        self.tracker = tracker
        self.online = datetime.timedelta(seconds=online_seconds)
        self._clock = clock

    def gateways(self) -> list[dict]:
        """Every gateway that has posted, most recently seen first."""
        tallies = self._merge(Gateway, "last_ip", GATEWAYS)
        now = self._clock()
        return [
            {
                "id": key,
                **self._times(t, now),
                "online": now - t.last_seen <= self.online,
                "last_ip": t.last_source,
                "posts": t.posts,
                "duplicates": t.duplicates,
            }
            for key, t in tallies
        ]

    def badges(self) -> list[dict]:
        """Every badge that has been heard, most recently seen first."""
        tallies = self._merge(Badge, "last_gateway_id", BADGES)
        now = self._clock()
        return [
            {
                "id": key,
                **self._times(t, now),
                "last_gateway_id": t.last_source,
                "posts": t.posts,
                "duplicates": t.duplicates,
            }
            for key, t in tallies
        ]

    def _merge(self, model, source: str, which: int):
        # Rows an admin described before the device was ever heard are the
        # registry's business, not traffic.
        query = select(model).where(model.last_seen.is_not(None))
        with self.tracker.flushes_held():
            pending = self.tracker.pending()[which]
            if self.session.get_bind().dialect.name == "sqlite":
                # SQLite's snapshot is the one the transaction's first read
                # took, which the request's session may have made already
                # (finding the viewer's login): a flush committed since is
                # not in it. A session of its own reads from now.
                with self.tracker.database.session(write=False) as session:
                    rows = self._tallies(session.scalars(query), source)
            else:
                # PostgreSQL (READ COMMITTED) reads what is committed when
                # the statement starts.
                rows = self._tallies(self.session.scalars(query), source)
        tallies = dict(rows)
        for key, tally in pending.items():
            if key in tallies:
                tallies[key].add(tally)
            else:
                tallies[key] = tally
        return sorted(tallies.items(), key=lambda item: item[1].last_seen, reverse=True)

    @staticmethod
    def _tallies(rows, source: str) -> list[tuple[str, Tally]]:
        return [
            (
                row.id,
                Tally(
                    row.first_seen,
                    row.last_seen,
                    getattr(row, source),
                    row.posts,
                    row.duplicates,
                ),
            )
            for row in rows
        ]

    @staticmethod
    def _times(tally: Tally, now) -> dict:
        return {
            "first_seen": tally.first_seen.isoformat(),
            "last_seen": tally.last_seen.isoformat(),
            "seconds_since_seen": round((now - tally.last_seen).total_seconds(), 1),
        }


# ---- the house, as admins describe it ---------------------------------------

# Names are shown on pages and in exports; control characters would break both.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NAME_MAX = 200
# A floor number, as the SmallInteger column holds it and a building has them.
FLOOR_MIN, FLOOR_MAX = -20, 200
ROOM_COLUMNS = ("id", "name", "site", "floor", "adjacent")
BEACON_COLUMNS = ("id", "room", "label")


class RegistryError(ValueError):
    """A value an admin gave is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RegistryConflict(Exception):
    """The change contradicts what is stored (409): a duplicate id, a room in use."""


class ImportRefused(Exception):
    """An import file with errors; nothing of it was written.

    ``errors`` are dicts with ``line`` (CSV, the header being line 1) or
    ``index`` (JSON, from 0), ``field`` and ``message``.
    """

    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} error(s); nothing was imported")
        self.errors = errors


@functools.cache
def timezones() -> tuple[str, ...]:
    """Every IANA timezone name this system knows, sorted (for the forms)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def _identifier(field: str, value) -> str:
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise RegistryError(field, "1 to 64 printable characters, no spaces")
    return value


def _name(field: str, value, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RegistryError(field, "must not be empty")
        return None
    if not isinstance(value, str):
        raise RegistryError(field, "must be text")
    value = value.strip()
    if len(value) > NAME_MAX:
        raise RegistryError(field, f"at most {NAME_MAX} characters")
    if _CONTROL.search(value):
        raise RegistryError(field, "must not contain control characters")
    return value


def _timezone(value) -> str:
    if not isinstance(value, str) or value.strip() not in timezones():
        raise RegistryError(
            "timezone", "must be an IANA timezone name, e.g. Europe/London"
        )
    value = value.strip()
    zoneinfo.ZoneInfo(value)  # loads: a listed name that cannot load is a bug
    return value


def _floor(value) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RegistryError("floor", "must be a whole number or empty")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?[0-9]{1,4}", text):
            raise RegistryError("floor", "must be a whole number or empty")
        value = int(text)
    if not isinstance(value, int):
        raise RegistryError("floor", "must be a whole number or empty")
    if not FLOOR_MIN <= value <= FLOOR_MAX:
        raise RegistryError("floor", f"must be between {FLOOR_MIN} and {FLOOR_MAX}")
    return value


def _optional_id(field: str, value) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _identifier(field, value.strip() if isinstance(value, str) else value)


def _id_list(field: str, value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(";") if part.strip()]
    if not isinstance(value, list | tuple):
        raise RegistryError(field, "must be a list of room ids")
    return sorted({_identifier(field, item) for item in value})


def local_time(moment: datetime.datetime | None, tz: str | None) -> str:
    """``2024-05-01 13:34 BST`` in the site's zone, or UTC when none is known."""
    if moment is None:
        return ""
    zone = zoneinfo.ZoneInfo(tz) if tz else datetime.UTC
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _insert_new(session: Session, model, **values) -> bool:
    """Insert a row of ``model`` unless one with its id is there, or turns
    up meanwhile; whether this inserted it.

    The activity flush inserts gateways, badges and beacons as they are
    first heard, in transactions of its own, and may commit one between an
    admin's look-up and insert (PostgreSQL; SQLite's write transactions
    hold the write lock from their start); so may another admin creating
    the same row. A plain INSERT would then fail: a 500 for what is
    answered as though the row had been there a moment earlier.
    """
    # On PostgreSQL a row inserted by a transaction not yet committed makes
    # this wait for it; the caller's next read sees it (READ COMMITTED).
    statement = (
        upsert_insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(model.id)
    )
    return session.scalar(statement) is not None


def _changes(row, values: dict) -> dict:
    """Set ``values`` on ``row``; the ones that differed: name → (old, new)."""
    changed = {}
    for key, value in values.items():
        old = getattr(row, key)
        if old != value:
            changed[key] = (old, value)
            setattr(row, key, value)
    return changed


class RegistryService:
    """Sites, rooms (with adjacency), beacons, and names and places of
    gateways and badges, as admins describe them.

    Every method checks all it is given before changing anything, and
    raises RegistryError (a field at fault), RegistryConflict or
    ImportRefused; callers doom the transaction on any of them. Audit
    records are the caller's (the views know who asked).
    """

    def __init__(self, session: Session):
        self.session = session

    # ---- sites ----

    def sites(self) -> list[Site]:
        """Every site, by id."""
        return list(self.session.scalars(select(Site).order_by(Site.id)))

    def site(self, site_id: str) -> Site | None:
        return self.session.get(Site, site_id)

    def _existing_site(self, field: str, site_id) -> Site:
        site = self.session.get(Site, _identifier(field, site_id))
        if site is None:
            raise RegistryError(field, f"no site {site_id!r}")
        return site

    def create_site(self, site_id, name, timezone) -> Site:
        """Add a site; its id must be new."""
        values = {
            "id": _identifier("id", site_id),
            "name": _name("name", name),
            "timezone": _timezone(timezone),
        }
        if not _insert_new(self.session, Site, **values):
            raise RegistryConflict(f"site {values['id']!r} exists already")
        return self.session.get(Site, values["id"])

    def update_site(self, site: Site, *, name=None, timezone=None) -> dict:
        """Change what is given; returns the changes (field → (old, new))."""
        values = {}
        if name is not None:
            values["name"] = _name("name", name)
        if timezone is not None:
            values["timezone"] = _timezone(timezone)
        return _changes(site, values)

    def delete_site(self, site: Site) -> None:
        """Delete a site with nothing in it; else RegistryConflict."""
        in_use = [
            f"{count} {what}"
            for what, model in (
                ("rooms", Room),
                ("gateways", Gateway),
                ("badges", Badge),
            )
            if (
                count := self.session.scalar(
                    select(func.count())
                    .select_from(model)
                    .where(model.site_id == site.id)
                )
            )
        ]
        if in_use:
            raise RegistryConflict(
                f"site {site.id!r} still has {', '.join(in_use)}: "
                "move or delete them first"
            )
        self.session.delete(site)
        self.session.flush()

    # ---- rooms ----

    def rooms(self, site_id: str | None = None) -> list[Room]:
        """Rooms by site and id, with their adjacent rooms loaded."""
        query = (
            select(Room)
            .options(selectinload(Room.adjacent))
            .order_by(Room.site_id, Room.id)
        )
        if site_id is not None:
            query = query.where(Room.site_id == site_id)
        return list(self.session.scalars(query))

    def room(self, room_id: str) -> Room | None:
        return self.session.get(Room, room_id)

    def _adjacent_rooms(self, room_id: str, site_id: str, ids: list[str]) -> list[Room]:
        rooms = []
        for other_id in ids:
            if other_id == room_id:
                raise RegistryError("adjacent", "a room is not adjacent to itself")
            other = self.session.get(Room, other_id)
            if other is None:
                raise RegistryError("adjacent", f"no room {other_id!r}")
            if other.site_id != site_id:
                raise RegistryError(
                    "adjacent",
                    f"room {other_id!r} is in site {other.site_id!r}, not {site_id!r}",
                )
            rooms.append(other)
        return rooms

    def _set_adjacent(self, room: Room, others: list[Room]) -> tuple[list, list]:
        """Make ``others`` exactly the rooms next to ``room``, both ways round."""
        old = {other.id: other for other in room.adjacent}
        new = {other.id: other for other in others}
        for other_id in old.keys() - new.keys():
            room.adjacent.remove(old[other_id])
            if room in old[other_id].adjacent:
                old[other_id].adjacent.remove(room)
        for other_id in new.keys() - old.keys():
            room.adjacent.append(new[other_id])
            if room not in new[other_id].adjacent:
                new[other_id].adjacent.append(room)
        return sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())

    def create_room(self, room_id, name, site_id, floor=None, adjacent=None) -> Room:
        """Add a room; ``adjacent`` rooms must be of the same site."""
        room_id = _identifier("id", room_id)
        name = _name("name", name)
        site = self._existing_site("site", site_id)
        floor = _floor(floor)
        others = self._adjacent_rooms(room_id, site.id, _id_list("adjacent", adjacent))
        if not _insert_new(
            self.session, Room, id=room_id, name=name, site_id=site.id, floor=floor
        ):
            raise RegistryConflict(f"room {room_id!r} exists already")
        room = self.session.get(Room, room_id)
        self._set_adjacent(room, others)
        self.session.flush()
        return room

    def update_room(
        self, room: Room, *, name=None, site_id=None, floor=..., adjacent=None
    ) -> dict:
        """Change what is given (``floor=None`` clears it; leave it out to
        keep it). Moving a room to another site drops adjacency the new
        site does not allow. Returns the changes."""
        values = {}
        if name is not None:
            values["name"] = _name("name", name)
        if site_id is not None:
            values["site_id"] = self._existing_site("site", site_id).id
        if floor is not ...:
            values["floor"] = _floor(floor)
        site = values.get("site_id", room.site_id)
        if adjacent is not None:
            others = self._adjacent_rooms(room.id, site, _id_list("adjacent", adjacent))
        else:
            others = [other for other in room.adjacent if other.site_id == site]
        changes = _changes(room, values)
        added, removed = self._set_adjacent(room, others)
        if added or removed:
            changes["adjacent"] = (removed, added)
        self.session.flush()
        return changes

    def delete_room(self, room: Room) -> None:
        """Delete a room no training run refers to; its beacons become unplaced."""
        # Imported here: stethoscope.labels builds on the registry, not the
        # other way round, and its package imports our services.
        from ..labels.models import TrainingRun

        runs = self.session.scalar(
            select(func.count())
            .select_from(TrainingRun)
            .where(TrainingRun.room_id == room.id)
        )
        if runs:
            raise RegistryConflict(
                f"room {room.id!r} is the label of {runs} training run(s); "
                "a room that models learnt from cannot be deleted (rename it instead)"
            )
        # Done here rather than left to ON DELETE: the session's copies of
        # the rows must agree with the database.
        for beacon in self.session.scalars(
            select(Beacon).where(Beacon.room_id == room.id)
        ):
            beacon.room_id = None
        self._set_adjacent(room, [])
        self.session.flush()
        self.session.delete(room)
        self.session.flush()

    # ---- beacons ----

    def beacons(self, site_id: str | None = None) -> list[Beacon]:
        """Beacons by id; with ``site_id``, those placed in its rooms."""
        query = select(Beacon).options(selectinload(Beacon.room)).order_by(Beacon.id)
        if site_id is not None:
            query = query.join(Room).where(Room.site_id == site_id)
        return list(self.session.scalars(query))

    def beacon(self, beacon_id: str) -> Beacon | None:
        return self.session.get(Beacon, beacon_id)

    def _room_or_none(self, room_id) -> str | None:
        room_id = _optional_id("room", room_id)
        if room_id is not None and self.session.get(Room, room_id) is None:
            raise RegistryError("room", f"no room {room_id!r}")
        return room_id

    def create_beacon(self, beacon_id, room_id=None, label=None) -> Beacon:
        """Describe a beacon (before or after it is heard: a heard one exists)."""
        values = {
            "id": _identifier("id", beacon_id),
            "room_id": self._room_or_none(room_id),
            "label": _name("label", label, required=False),
        }
        if not _insert_new(self.session, Beacon, **values):
            raise RegistryConflict(f"beacon {values['id']!r} exists already")
        return self.session.get(Beacon, values["id"])

    def update_beacon(self, beacon: Beacon, *, room_id=..., label=...) -> dict:
        """Place (``room_id``; None unplaces) or relabel; returns the changes."""
        values = {}
        if room_id is not ...:
            values["room_id"] = self._room_or_none(room_id)
        if label is not ...:
            values["label"] = _name("label", label, required=False)
        changes = _changes(beacon, values)
        self.session.flush()
        return changes

    def delete_beacon(self, beacon: Beacon) -> None:
        """Forget a beacon; if it is heard again it comes back unplaced."""
        self.session.delete(beacon)
        self.session.flush()

    # ---- gateways and badges ----

    def gateways(self) -> list[Gateway]:
        return list(self.session.scalars(select(Gateway).order_by(Gateway.id)))

    def gateway(self, gateway_id: str) -> Gateway | None:
        return self.session.get(Gateway, gateway_id)

    def save_gateway(
        self, gateway_id, *, name=..., site_id=...
    ) -> tuple[Gateway, bool, dict]:
        """Name and place a gateway, creating its row if it was never heard.

        Returns (gateway, created, changes).
        """
        gateway_id = _identifier("id", gateway_id)
        values = {}
        if name is not ...:
            values["name"] = _name("name", name, required=False)
        if site_id is not ...:
            site_id = _optional_id("site", site_id)
            values["site_id"] = (
                self._existing_site("site", site_id).id if site_id else None
            )
        gateway = self.session.get(Gateway, gateway_id)
        created = False
        if gateway is None:
            # Its traffic columns stay empty until it posts (the activity
            # tracker's upsert fills NULL times in).
            created = _insert_new(
                self.session, Gateway, id=gateway_id, posts=0, duplicates=0
            )
            gateway = self.session.get(Gateway, gateway_id)
        changes = _changes(gateway, values)
        self.session.flush()
        return gateway, created, changes

    def badges(self) -> list[Badge]:
        return list(self.session.scalars(select(Badge).order_by(Badge.id)))

    def badge(self, badge_id: str) -> Badge | None:
        return self.session.get(Badge, badge_id)

    def save_badge(
        self, badge_id, *, wearer=..., site_id=..., active=...
    ) -> tuple[Badge, bool, dict]:
        """Say who wears a badge, at which site, and whether it is in use.

        Returns (badge, created, changes); a wearer change is reported as
        such, never with the names (the caller logs changes).
        """
        badge_id = _identifier("id", badge_id)
        values = {}
        if wearer is not ...:
            values["wearer"] = _name("wearer", wearer, required=False)
        if site_id is not ...:
            site_id = _optional_id("site", site_id)
            values["site_id"] = (
                self._existing_site("site", site_id).id if site_id else None
            )
        if active is not ...:
            if not isinstance(active, bool):
                raise RegistryError("active", "must be true or false")
            values["active"] = active
        badge = self.session.get(Badge, badge_id)
        created = False
        if badge is None:
            created = _insert_new(
                self.session, Badge, id=badge_id, posts=0, duplicates=0, active=True
            )
            badge = self.session.get(Badge, badge_id)
        changes = _changes(badge, values)
        if "wearer" in changes:
            changes["wearer"] = "changed"
        self.session.flush()
        return badge, created, changes

    # ---- unplaced ----

    def unplaced(self) -> dict[str, list]:
        """Beacons heard but in no room, and badges seen but at no site."""
        beacons = self.session.scalars(
            select(Beacon)
            .where(Beacon.room_id.is_(None), Beacon.last_heard.is_not(None))
            .order_by(Beacon.last_heard.desc(), Beacon.id)
        )
        badges = self.session.scalars(
            select(Badge)
            .where(Badge.site_id.is_(None), Badge.last_seen.is_not(None))
            .order_by(Badge.last_seen.desc(), Badge.id)
        )
        return {"beacons": list(beacons), "badges": list(badges)}

    # ---- bulk ----

    def export_rooms(self, site_id: str | None = None) -> list[dict]:
        """Rooms as import takes them: id, name, site, floor, adjacent (ids)."""
        return [
            {
                "id": room.id,
                "name": room.name,
                "site": room.site_id,
                "floor": room.floor,
                "adjacent": [other.id for other in room.adjacent],
            }
            for room in self.rooms(site_id)
        ]

    def export_beacons(self, site_id: str | None = None) -> list[dict]:
        """Beacons as import takes them: id, room (None: unplaced), label."""
        return [
            {"id": beacon.id, "room": beacon.room_id, "label": beacon.label}
            for beacon in self.beacons(site_id)
        ]

    def import_rooms(self, rows: list[tuple[dict, dict]]) -> dict:
        """Create or update every room of a file, all or nothing.

        ``rows`` are (where, row) pairs: ``where`` is {"line": n} or
        {"index": i}, for errors. A room of the file gets exactly the
        adjacency the file gives it (a pair listed on either side is
        enough). Returns counts created/updated/unchanged and the ids.
        """
        errors: list[dict] = []
        parsed: dict[str, dict] = {}
        sites = {site.id for site in self.sites()}

        def fail(where, field, message):
            errors.append({**where, "field": field, "message": message})

        for where, row in rows:
            try:
                room_id = _identifier("id", _cell(row, "id"))
                if room_id in parsed:
                    raise RegistryError("id", f"room {room_id!r} is in the file twice")
                site_id = _identifier("site", _cell(row, "site"))
                if site_id not in sites:
                    raise RegistryError("site", f"no site {site_id!r}")
                parsed[room_id] = {
                    "where": where,
                    "name": _name("name", _cell(row, "name")),
                    "site_id": site_id,
                    "floor": _floor(_cell(row, "floor")),
                    "adjacent": _id_list("adjacent", _cell(row, "adjacent")),
                }
            except RegistryError as exc:
                fail(where, exc.field, exc.message)
        stored = {room.id: room for room in self.rooms()}
        pairs: dict[str, set[str]] = {room_id: set() for room_id in parsed}
        for room_id, values in parsed.items():
            for other_id in values["adjacent"]:
                other_site = (
                    parsed[other_id]["site_id"]
                    if other_id in parsed
                    else stored[other_id].site_id
                    if other_id in stored
                    else None
                )
                if other_id == room_id:
                    fail(
                        values["where"], "adjacent", "a room is not adjacent to itself"
                    )
                elif other_site is None:
                    fail(values["where"], "adjacent", f"no room {other_id!r}")
                elif other_site != values["site_id"]:
                    fail(
                        values["where"],
                        "adjacent",
                        f"room {other_id!r} is in site {other_site!r}, "
                        f"not {values['site_id']!r}",
                    )
                else:
                    pairs[room_id].add(other_id)
                    if other_id in pairs:
                        pairs[other_id].add(room_id)
        if errors:
            raise ImportRefused(errors)

        result = {"created": [], "updated": [], "unchanged": []}
        before = {
            room_id: {other.id for other in stored[room_id].adjacent}
            for room_id in parsed
            if room_id in stored
        }
        for room_id, values in parsed.items():
            if room_id not in stored:
                room = Room(
                    id=room_id,
                    name=values["name"],
                    site_id=values["site_id"],
                    floor=values["floor"],
                )
                self.session.add(room)
                stored[room_id] = room
                result["created"].append(room_id)
        self.session.flush()
        for room_id, values in parsed.items():
            room = stored[room_id]
            changed = _changes(
                room,
                {key: values[key] for key in ("name", "site_id", "floor")},
            )
            self._set_adjacent(
                room, [stored[other] for other in sorted(pairs[room_id])]
            )
            if room_id not in before:
                continue
            if changed or before[room_id] != pairs[room_id]:
                result["updated"].append(room_id)
            else:
                result["unchanged"].append(room_id)
        self.session.flush()
        return result

    def import_beacons(self, rows: list[tuple[dict, dict]]) -> dict:
        """Create or update every beacon of a file, all or nothing (see
        import_rooms); an empty room unplaces the beacon."""
        errors: list[dict] = []
        parsed: dict[str, dict] = {}
        rooms = set(self.session.scalars(select(Room.id)))
        for where, row in rows:
            try:
                beacon_id = _identifier("id", _cell(row, "id"))
                if beacon_id in parsed:
                    raise RegistryError(
                        "id", f"beacon {beacon_id!r} is in the file twice"
                    )
                room_id = _optional_id("room", _cell(row, "room"))
                if room_id is not None and room_id not in rooms:
                    raise RegistryError("room", f"no room {room_id!r}")
                parsed[beacon_id] = {
                    "room_id": room_id,
                    "label": _name("label", _cell(row, "label"), required=False),
                }
            except RegistryError as exc:
                errors.append({**where, "field": exc.field, "message": exc.message})
        if errors:
            raise ImportRefused(errors)
        result = {"created": [], "updated": [], "unchanged": []}
        stored = (
            {
                beacon.id: beacon
                for beacon in self.session.scalars(
                    select(Beacon).where(Beacon.id.in_(list(parsed)))
                )
            }
            if parsed
            else {}
        )
        for beacon_id, values in parsed.items():
            beacon = stored.get(beacon_id)
            if beacon is None:
                if _insert_new(self.session, Beacon, id=beacon_id, **values):
                    result["created"].append(beacon_id)
                    continue
                # Heard for the first time since it was looked up.
                beacon = self.session.get(Beacon, beacon_id)
            if _changes(beacon, values):
                result["updated"].append(beacon_id)
            else:
                result["unchanged"].append(beacon_id)
        self.session.flush()
        return result


def _cell(row: dict, key: str):
    value = row.get(key)
    return value.strip() if isinstance(value, str) else value
