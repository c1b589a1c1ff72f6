"""Gateways and badges as seen by ingest (SeenService); the house as admins
describe it (RegistryService)."""

import datetime
import zoneinfo
from collections.abc import Callable, Iterable, Mapping

import pydantic
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..audit.services import no_audit
from ..db import upsert_insert, utcnow
from ..endpoints import field_errors
from ..errors import Conflict, FieldError, Invalid, NotFound, ValidationError
from ..schemas import IDENTIFIER
from .activity import Tally
from .models import Badge, Beacon, Gateway, Room, Site
from .schemas import (
    BadgeChange,
    BeaconChange,
    BeaconIn,
    BeaconRow,
    GatewayChange,
    RoomChange,
    RoomIn,
    RoomRow,
    SiteChange,
    SiteIn,
)

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

# Ids of the changed rooms or beacons an import's audit event lists.
AUDIT_IDS = 100
# Column names in audit details and errors: what the API calls them.
_PUBLIC_NAMES = {"site_id": "site", "room_id": "room"}


def local_time(moment: datetime.datetime | None, tz: str | None) -> str:
    """``2024-05-01 13:34 BST`` in the site's zone, or UTC when none is known."""
    if moment is None:
        return ""
    zone = zoneinfo.ZoneInfo(tz) if tz else datetime.UTC
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def audit_details(changes: dict) -> dict:
    """Changes (field → (old, new)) as the audit log keeps them."""
    details = {}
    for key, change in changes.items():
        name = _PUBLIC_NAMES.get(key, key)
        if change == "changed":
            details[name] = "changed"
        elif key == "adjacent":
            removed, added = change
            details[name] = {"added": added, "removed": removed}
        else:
            details[name] = {"from": change[0], "to": change[1]}
    return details


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


def _columns(row, *names: str) -> dict:
    """``row``'s values of the columns ``names``, as the API calls them."""
    return {_PUBLIC_NAMES.get(name, name): getattr(row, name) for name in names}


def _changes(row, values: dict) -> dict:
    """Set ``values`` on ``row``; the ones that differed: name → (old, new)."""
    changed = {}
    for key, value in values.items():
        old = getattr(row, key)
        if old != value:
            changed[key] = (old, value)
            setattr(row, key, value)
    return changed


def _device_id(device_id: str) -> str:
    if not IDENTIFIER.fullmatch(device_id):
        raise ValidationError("id", "1 to 64 printable characters, no spaces")
    return device_id


def _rows(model, rows: Iterable[tuple[str, Mapping]], errors: list[FieldError]):
    """(where, model instance) of each row that validates; the others'
    errors, their fields prefixed with where the row is ("line 3", "2")."""
    for where, row in rows:
        try:
            yield where, model.model_validate(row)
        except pydantic.ValidationError as exc:
            errors.extend(field_errors(exc, prefix=f"{where}."))


class RegistryService:
    """Sites, rooms (with adjacency), beacons, and names and places of
    gateways and badges, as admins describe them.

    Values come as the models of stethoscope.registry.schemas (checked
    already); what needs the database (a site that exists, adjacency within
    a site, an id in use) is checked here before anything changes, raising
    stethoscope.errors (ValidationError naming the field, Conflict, NotFound,
    Invalid for an import's rows); callers doom the transaction on any of
    them. ``audit(action, target=, details=)`` records every change in the
    caller's transaction; a wearer's name is never in it.
    """

    def __init__(self, session: Session, *, audit: Callable[..., object] = no_audit):
        self.session = session
        self._audit = audit

    def _insert(self, model, **values):
        """A new row of ``model``; Conflict when its id is taken."""
        if not _insert_new(self.session, model, **values):
            kind = model.__name__.lower()
            raise Conflict(f"{kind} {values['id']!r} exists already")
        return self.session.get(model, values["id"])

    def _created(self, row, *columns: str, **details):
        """Audit ``row`` as created, with the values of its ``columns``."""
        details = {**_columns(row, *columns), **details}
        self._audit(
            f"{type(row).__name__.lower()}.create", target=row.id, details=details
        )
        return row

    def _updated(self, action: str, row, changes: dict) -> dict:
        """Write ``row``'s ``changes`` (field → (old, new)) and audit them as
        ``action``, if there are any; the changes."""
        self.session.flush()
        if changes:
            self._audit(action, target=row.id, details=audit_details(changes))
        return changes

    def find(self, model, key: str):
        """The row of ``model`` (Site, Room, Beacon, Gateway, Badge) with id
        ``key``, or None."""
        # A key that is no identifier is not looked up: every id here is
        # one, and PostgreSQL answers a NUL in a query's text with an error.
        return self.session.get(model, key) if IDENTIFIER.fullmatch(key) else None

    def get(self, model, key: str):
        """The row of ``model`` with id ``key``, or NotFound."""
        row = self.find(model, key)
        if row is None:
            raise NotFound(f"no {model.__name__.lower()} {key!r}")
        return row

    def badge(self, badge_id: str) -> Badge | None:
        """The badge, or None (one only heard has a row too)."""
        return self.find(Badge, badge_id)

    # ---- sites ----

    def sites(self) -> list[Site]:
        """Every site, by id."""
        return list(self.session.scalars(select(Site).order_by(Site.id)))

    def site(self, site_id: str) -> Site | None:
        """The site, or None."""
        return self.find(Site, site_id)

    def get_site(self, site_id: str) -> Site:
        """The site, or NotFound."""
        return self.get(Site, site_id)

    def _existing_site(self, field: str, site_id: str) -> Site:
        site = self.session.get(Site, site_id)
        if site is None:
            raise ValidationError(field, f"no site {site_id!r}")
        return site

    def create_site(self, values: SiteIn) -> Site:
        """Add a site; its id must be new."""
        site = self._insert(Site, **values.model_dump())
        return self._created(site, "name", "timezone")

    def update_site(self, site: Site, change: SiteChange) -> dict:
        """Change what is given; returns the changes (field → (old, new))."""
        values = {
            key: value
            for key in ("name", "timezone")
            if (value := getattr(change, key)) is not None
        }
        return self._updated("site.update", site, _changes(site, values))

    def delete_site(self, site: Site) -> None:
        """Delete a site with nothing in it; else Conflict."""
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
            raise Conflict(
                f"site {site.id!r} still has {', '.join(in_use)}: "
                "move or delete them first"
            )
        self.session.delete(site)
        self.session.flush()
        self._audit("site.delete", target=site.id)

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

    def check_site_filter(self, site_id: str | None) -> str | None:
        """``site_id`` when it names a site (or is None); else 400 (site)."""
        if site_id is not None:
            self._existing_site("site", site_id)
        return site_id

    def _adjacent_rooms(self, room_id: str, site_id: str, ids: list[str]) -> list[Room]:
        rooms = []
        for other_id in ids:
            if other_id == room_id:
                raise ValidationError("adjacent", "a room is not adjacent to itself")
            other = self.session.get(Room, other_id)
            if other is None:
                raise ValidationError("adjacent", f"no room {other_id!r}")
            if other.site_id != site_id:
                raise ValidationError(
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

    def create_room(self, values: RoomIn) -> Room:
        """Add a room; ``adjacent`` rooms must be of the same site."""
        site = self._existing_site("site", values.site)
        others = self._adjacent_rooms(values.id, site.id, values.adjacent)
        columns = ("name", "floor", "max_stay_minutes")
        room = self._insert(
            Room,
            id=values.id,
            site_id=site.id,
            **values.model_dump(include=set(columns)),
        )
        self._set_adjacent(room, others)
        self.session.flush()
        adjacent = [other.id for other in room.adjacent]
        return self._created(room, "site_id", *columns, adjacent=adjacent)

    def update_room(self, room: Room, change: RoomChange) -> dict:
        """Change what is given (a floor or max_stay_minutes given as None
        clears it). Moving a room to another site drops adjacency the new
        site does not allow. Returns the changes."""
        values = {
            key: getattr(change, key)
            for key in ("floor", "max_stay_minutes")
            if key in change.model_fields_set
        }
        if change.name is not None:
            values["name"] = change.name
        if change.site is not None:
            values["site_id"] = self._existing_site("site", change.site).id
        site = values.get("site_id", room.site_id)
        if change.adjacent is not None:
            others = self._adjacent_rooms(room.id, site, change.adjacent)
        else:
            others = [other for other in room.adjacent if other.site_id == site]
        changes = _changes(room, values)
        added, removed = self._set_adjacent(room, others)
        if added or removed:
            changes["adjacent"] = (removed, added)
        return self._updated("room.update", room, changes)

    def delete_room(self, room: Room) -> None:
        """Delete a room no other record keeps (a training run's label); its
        beacons become unplaced."""
        for column in _keeping_rooms():
            count = self.session.scalar(select(func.count()).where(column == room.id))
            if count:
                raise Conflict(
                    f"room {room.id!r} is the room of {count} "
                    f"{column.table.name.replace('_', ' ')}; a room that models "
                    "learnt from cannot be deleted (rename it instead)"
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
        self._audit("room.delete", target=room.id)

    # ---- beacons ----

    def beacons(self, site_id: str | None = None) -> list[Beacon]:
        """Beacons by id; with ``site_id``, those placed in its rooms."""
        query = select(Beacon).options(selectinload(Beacon.room)).order_by(Beacon.id)
        if site_id is not None:
            query = query.join(Room).where(Room.site_id == site_id)
        return list(self.session.scalars(query))

    def _room_or_none(self, room_id: str | None) -> str | None:
        if room_id is not None and self.session.get(Room, room_id) is None:
            raise ValidationError("room", f"no room {room_id!r}")
        return room_id

    def create_beacon(self, values: BeaconIn) -> Beacon:
        """Describe a beacon (before or after it is heard: a heard one exists)."""
        room_id = self._room_or_none(values.room)
        beacon = self._insert(Beacon, id=values.id, room_id=room_id, label=values.label)
        return self._created(beacon, "room_id", "label")

    def update_beacon(self, beacon: Beacon, change: BeaconChange) -> dict:
        """Place (``room``; None unplaces) or relabel; returns the changes."""
        values = {}
        if "room" in change.model_fields_set:
            values["room_id"] = self._room_or_none(change.room)
        if "label" in change.model_fields_set:
            values["label"] = change.label
        changes = _changes(beacon, values)
        action = "beacon.place" if "room_id" in changes else "beacon.update"
        return self._updated(action, beacon, changes)

    def delete_beacon(self, beacon: Beacon) -> None:
        """Forget a beacon; if it is heard again it comes back unplaced."""
        self.session.delete(beacon)
        self.session.flush()
        self._audit("beacon.delete", target=beacon.id)

    # ---- gateways and badges ----

    def gateways(self) -> list[Gateway]:
        """Every gateway row, by id."""
        return list(self.session.scalars(select(Gateway).order_by(Gateway.id)))

    def _device_site(self, change, values: dict) -> None:
        if "site" in change.model_fields_set:
            values["site_id"] = (
                self._existing_site("site", change.site).id if change.site else None
            )

    def _save_device(self, kind: str, model, device_id: str, values: dict, **new):
        """Create the row if it was never heard, then set ``values``;
        (row, created, changes), audited as ``kind``.create or .update."""
        row = self.session.get(model, device_id)
        created = False
        if row is None:
            # Its traffic columns stay empty until it posts (the activity
            # tracker's upsert fills NULL times in).
            created = _insert_new(
                self.session, model, id=device_id, posts=0, duplicates=0, **new
            )
            row = self.session.get(model, device_id)
        changes = _changes(row, values)
        if "wearer" in changes:
            changes["wearer"] = "changed"
        self.session.flush()
        if created or changes:
            self._audit(
                f"{kind}.{'create' if created else 'update'}",
                target=row.id,
                details=audit_details(changes),
            )
        return row, created, changes

    def save_gateway(
        self, gateway_id: str, change: GatewayChange
    ) -> tuple[Gateway, bool, dict]:
        """Name and place a gateway, creating its row if it was never heard.

        Returns (gateway, created, changes).
        """
        gateway_id = _device_id(gateway_id)
        values = {}
        if "name" in change.model_fields_set:
            values["name"] = change.name
        self._device_site(change, values)
        return self._save_device("gateway", Gateway, gateway_id, values)

    def badges(self) -> list[Badge]:
        """Every badge row, by id."""
        return list(self.session.scalars(select(Badge).order_by(Badge.id)))

    def save_badge(
        self, badge_id: str, change: BadgeChange
    ) -> tuple[Badge, bool, dict]:
        """Say who wears a badge, at which site, and whether it is in use.

        Returns (badge, created, changes); a wearer change is reported (and
        logged) as such, never with the names.
        """
        badge_id = _device_id(badge_id)
        values = {}
        if "wearer" in change.model_fields_set:
            values["wearer"] = change.wearer
        self._device_site(change, values)
        if change.active is not None:
            values["active"] = change.active
        return self._save_device("badge", Badge, badge_id, values, active=True)

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

    def _imported(self, kind: str, source: str, result: dict) -> dict:
        """Write an import of ``kind`` and audit it as one event; its result."""
        self.session.flush()
        self._audit(
            f"{kind}.import",
            details={
                "format": source,
                **{key: len(ids) for key, ids in result.items()},
                "created_ids": result["created"][:AUDIT_IDS],
                "updated_ids": result["updated"][:AUDIT_IDS],
            },
        )
        return result

    def import_rooms(self, rows: Iterable[tuple[str, Mapping]], source: str) -> dict:
        """Create or update every room of a file, all or nothing.

        ``rows`` are (where, row) pairs: ``where`` ("line 3", or an index)
        prefixes the fields of its errors. A room of the file gets exactly
        the adjacency the file gives it (a pair listed on either side is
        enough). A file without max_stay_minutes (a column or key) keeps the
        rooms' limits. Returns the ids created, updated and unchanged;
        audited as one ``room.import`` from ``source`` (csv, json).
        """
        errors: list[FieldError] = []
        parsed: dict[str, tuple[str, RoomRow]] = {}
        sites = {site.id for site in self.sites()}

        def fail(where, field, message):
            errors.append(FieldError(f"{where}.{field}", message))

        for where, row in _rows(RoomRow, rows, errors):
            if row.id in parsed:
                fail(where, "id", f"room {row.id!r} is in the file twice")
            elif row.site not in sites:
                fail(where, "site", f"no site {row.site!r}")
            else:
                parsed[row.id] = (where, row)
        stored = {room.id: room for room in self.rooms()}
        pairs: dict[str, set[str]] = {room_id: set() for room_id in parsed}
        for room_id, (where, row) in parsed.items():
            for other_id in row.adjacent:
                other_site = (
                    parsed[other_id][1].site
                    if other_id in parsed
                    else stored[other_id].site_id
                    if other_id in stored
                    else None
                )
                if other_id == room_id:
                    fail(where, "adjacent", "a room is not adjacent to itself")
                elif other_site is None:
                    fail(where, "adjacent", f"no room {other_id!r}")
                elif other_site != row.site:
                    fail(
                        where,
                        "adjacent",
                        f"room {other_id!r} is in site {other_site!r}, "
                        f"not {row.site!r}",
                    )
                else:
                    pairs[room_id].add(other_id)
                    if other_id in pairs:
                        pairs[other_id].add(room_id)
        if errors:
            raise Invalid(errors)

        result = {"created": [], "updated": [], "unchanged": []}
        before = {
            room_id: {other.id for other in stored[room_id].adjacent}
            for room_id in parsed
            if room_id in stored
        }
        for room_id, (_, row) in parsed.items():
            if room_id not in stored:
                room = Room(id=room_id, name=row.name, site_id=row.site)
                self.session.add(room)
                stored[room_id] = room
                result["created"].append(room_id)
        self.session.flush()
        for room_id, (_, row) in parsed.items():
            room = stored[room_id]
            values = {"name": row.name, "site_id": row.site, "floor": row.floor}
            if "max_stay_minutes" in row.model_fields_set:
                values["max_stay_minutes"] = row.max_stay_minutes
            changed = _changes(room, values)
            self._set_adjacent(
                room, [stored[other] for other in sorted(pairs[room_id])]
            )
            if room_id not in before:
                continue
            changed = changed or before[room_id] != pairs[room_id]
            result["updated" if changed else "unchanged"].append(room_id)
        return self._imported("room", source, result)

    def import_beacons(self, rows: Iterable[tuple[str, Mapping]], source: str) -> dict:
        """Create or update every beacon of a file, all or nothing (see
        import_rooms); an empty room unplaces the beacon."""
        errors: list[FieldError] = []
        parsed: dict[str, dict] = {}
        rooms = set(self.session.scalars(select(Room.id)))
        for where, row in _rows(BeaconRow, rows, errors):
            if row.id in parsed:
                errors.append(
                    FieldError(f"{where}.id", f"beacon {row.id!r} is in the file twice")
                )
            elif row.room is not None and row.room not in rooms:
                errors.append(FieldError(f"{where}.room", f"no room {row.room!r}"))
            else:
                parsed[row.id] = {"room_id": row.room, "label": row.label}
        if errors:
            raise Invalid(errors)
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
            changed = bool(_changes(beacon, values))
            result["updated" if changed else "unchanged"].append(beacon_id)
        return self._imported("beacon", source, result)


def _keeping_rooms():
    """Columns of other features' tables whose ON DELETE RESTRICT keeps a
    room (a training run's label). Found in the metadata, so that the
    registry imports nothing of the features built on it."""
    rooms_id = Room.__table__.c.id
    return [
        fk.parent
        for table in Room.metadata.tables.values()
        for fk in table.foreign_keys
        if fk.column is rooms_id and (fk.ondelete or "").upper() == "RESTRICT"
    ]
