"""stethoscope-house INI COMMAND: the house from the console, as on
/admin/house: sites, rooms (with their doors), beacons, badges, and the
rooms and beacons as the CSV or JSON files the admin page and the JSON API
export and import.

  site add ID --name NAME --timezone ZONE      site list
  room add ID --site S --name NAME [--floor N] [--max-stay MINUTES]
           [--door ROOM ...]                   room list [--site S]
  room change ID [--name NAME] [--floor N|none] [--max-stay MINUTES|none]
  beacon add ID [--room R] [--label TEXT]      beacon list [--site S]
  badge add ID --site S [--wearer NAME]        badge list
  export FILE [--kind rooms|beacons] [--site S]
  import FILE [--kind rooms|beacons]

A FILE ending in .csv is CSV, .json JSON; its kind is --kind, else read
from its name (rooms.csv, beacons.json: what the admin page's export
downloads) or from a JSON file's {"rooms": [...]}. An import is all or
nothing. Every change goes through the registry's service, which checks it
as the web forms do and records it in the audit log, as console:<your login
name>, in the same transaction.
"""

import argparse
import json
import sys
from pathlib import Path

import pydantic

from ..endpoints import field_errors
from ..errors import Invalid
from ..registry.models import Room
from ..registry.schemas import (
    MAX_IMPORT_BYTES,
    MAX_STAY_MAX,
    MAX_STAY_MIN,
    BadgeChange,
    BeaconIn,
    RoomChange,
    RoomIn,
    SiteIn,
)
from ..registry.services import RegistryService
from ..registry.transfer import KINDS, csv_response, exported, import_file
from ._console import ConsoleError, argument_parser, console, table, when

PROG = "stethoscope-house"
FORMATS = {".csv": "text/csv", ".json": "application/json"}
MAX_STAY_HELP = (
    f"minutes ({MAX_STAY_MIN} to {MAX_STAY_MAX}) a resident may stay in it "
    "before a long-stay alert"
)


def registry(request) -> RegistryService:
    return request.find_service(RegistryService)


def values(model, **fields):
    """``model`` of the options given, or Invalid naming the options wrong
    (as the forms' fields are named)."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


# ---- sites ----


def site_add(request, args) -> None:
    with request.tm:
        site = registry(request).create_site(
            values(SiteIn, id=args.id, name=args.name, timezone=args.timezone)
        )
        line = f"added site {site.id} ({site.name}, {site.timezone})"
    print(line)


def site_list(request, args) -> None:
    with request.tm:
        rows = [
            (site.id, site.name, site.timezone) for site in registry(request).sites()
        ]
    if not rows:
        print(
            f"no sites yet: {PROG} {args.config_uri} site add ID --name … --timezone …"
        )
        return
    print(table(("id", "name", "timezone"), rows))


# ---- rooms ----


def room_add(request, args) -> None:
    with request.tm:
        fields = {key: getattr(args, key) for key in ("id", "name", "site", "floor")}
        fields.update(max_stay_minutes=args.max_stay, adjacent=args.door)
        room = registry(request).create_room(values(RoomIn, **fields))
        doors = ", ".join(sorted(other.id for other in room.adjacent)) or "none"
        line = (
            f"added room {room.id} ({room.name}) to site {room.site_id}; "
            f"doors to: {doors}"
        )
    print(line)


def room_change(request, args) -> None:
    # "none" clears a floor or a limit; an option left out keeps its value.
    fields = {
        key: "" if value == "none" else value
        for key, value in (
            ("name", args.name),
            ("floor", args.floor),
            ("max_stay_minutes", args.max_stay),
        )
        if value is not None
    }
    with request.tm:
        service = registry(request)
        room = service.get(Room, args.id)
        changes = service.update_room(room, values(RoomChange, **fields))
    print(
        f"changed room {args.id}: {', '.join(sorted(changes))}"
        if changes
        else f"room {args.id} is already so; nothing changed"
    )


def _in_site(request, site: str | None, rows) -> list:
    """``rows`` (RegistryService.rooms or .beacons) of ``site``, or of all."""
    service = registry(request)
    return rows(service, service.check_site_filter(site))


def _listed(what: str, headers: tuple[str, ...], rows: list) -> None:
    print(table(headers, rows) if rows else f"no {what}")


def room_list(request, args) -> None:
    with request.tm:
        rows = [
            (
                room.id,
                room.name,
                room.site_id,
                "" if room.floor is None else room.floor,
                "-" if room.max_stay_minutes is None else room.max_stay_minutes,
                " ".join(sorted(other.id for other in room.adjacent)),
            )
            for room in _in_site(request, args.site, RegistryService.rooms)
        ]
    _listed("rooms", ("id", "name", "site", "floor", "max stay", "doors to"), rows)


# ---- beacons ----


def beacon_add(request, args) -> None:
    with request.tm:
        beacon = registry(request).create_beacon(
            values(BeaconIn, id=args.id, room=args.room, label=args.label)
        )
        where = f"in room {beacon.room_id}" if beacon.room_id else "in no room"
        line = f"added beacon {beacon.id} {where}"
    print(line)


def beacon_list(request, args) -> None:
    with request.tm:
        rows = [
            (
                beacon.id,
                beacon.room_id or "-",
                beacon.label or "",
                when(beacon.last_heard, never="never"),
            )
            for beacon in _in_site(request, args.site, RegistryService.beacons)
        ]
    _listed("beacons", ("id", "room", "label", "last heard"), rows)


# ---- badges ----


def badge_add(request, args) -> None:
    fields = {"site": args.site}
    if args.wearer is not None:
        fields["wearer"] = args.wearer
    with request.tm:
        badge, created, changes = registry(request).save_badge(
            args.id, values(BadgeChange, **fields)
        )
        site = badge.site_id
    if created:
        print(f"added badge {args.id} at site {site}")
    elif changes:
        # A badge heard before it was described already has a row.
        print(f"badge {args.id} was known; changed {', '.join(sorted(changes))}")
    else:
        print(f"badge {args.id} is already so; nothing changed")


def badge_list(request, args) -> None:
    with request.tm:
        badges = registry(request).badges()
        rows = [
            (
                badge.id,
                badge.site_id or "-",
                badge.wearer or "",
                "yes" if badge.active else "no",
                when(badge.last_seen, never="never"),
            )
            for badge in badges
        ]
    _listed("badges", ("id", "site", "wearer", "active", "last seen"), rows)


# ---- files ----


def _content_type(path: Path) -> str:
    content_type = FORMATS.get(path.suffix.lower())
    if content_type is None:
        raise ConsoleError(f"{path}: the name must end in .csv or .json")
    return content_type


def _kind(path: Path, given: str | None, body: bytes | None = None) -> str:
    """rooms or beacons: --kind, else the file's name, else a JSON file's key."""
    if given:
        return given
    named = [kind for kind in KINDS if kind in path.stem.lower()]
    if len(named) == 1:
        return named[0]
    if body is not None and path.suffix.lower() == ".json":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in KINDS:
            return next(iter(data))
    raise ConsoleError(f"{path}: rooms or beacons? Say --kind rooms or --kind beacons")


def export_file(request, args) -> None:
    path = Path(args.file)
    content_type = _content_type(path)
    kind = _kind(path, args.kind)
    with request.tm:
        export = exported(registry(request), kind, args.site)
    if content_type == "text/csv":
        # The web export's own CSV: spreadsheet-safe, read back by import.
        body = csv_response(kind, export).body
    else:
        body = (json.dumps(export.model_dump(mode="json"), indent=2) + "\n").encode()
    try:
        path.write_bytes(body)
    except OSError as exc:
        raise ConsoleError(f"cannot write {path}: {exc.strerror}") from None
    print(f"{path}: {len(getattr(export, kind))} {kind}")


def import_file_(request, args) -> None:
    path = Path(args.file)
    content_type = _content_type(path)
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise ConsoleError(f"cannot read {path}: {exc.strerror}") from None
    if len(body) > MAX_IMPORT_BYTES:
        raise ConsoleError(f"{path}: at most {MAX_IMPORT_BYTES:,} bytes")
    kind = _kind(path, args.kind, body)
    with request.tm:
        result = import_file(registry(request), kind, content_type, body)
    print(
        f"imported {path} ({kind}): {result.created} created, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )


# ---- arguments ----


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def group(name: str, help: str):
        sub = commands.add_parser(name, help=help, allow_abbrev=False)
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(actions, name: str, help: str, run, write: bool):
        sub = actions.add_parser(name, help=help, allow_abbrev=False)
        sub.set_defaults(run=run, write=write)
        return sub

    sites = group("site", "care homes")
    p = action(sites, "add", "add a site", site_add, True)
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--timezone", required=True, help="e.g. Europe/London")
    action(sites, "list", "list the sites", site_list, False)

    rooms = group("room", "rooms and the doors between them")
    p = action(rooms, "add", "add a room", room_add, True)
    p.add_argument("id")
    p.add_argument("--site", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--floor", help="a whole number (0 the ground floor)")
    p.add_argument(
        "--max-stay", metavar="MINUTES", help=f"{MAX_STAY_HELP} (default: none)"
    )
    p.add_argument(
        "--door",
        nargs="+",
        default=[],
        metavar="ROOM",
        help="rooms of the same site it has a door to (both ways)",
    )
    p = action(
        rooms, "change", "change a room's name, floor or limit", room_change, True
    )
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--floor", help="a whole number, or none")
    p.add_argument("--max-stay", metavar="MINUTES", help=f"{MAX_STAY_HELP}, or none")
    p = action(rooms, "list", "list rooms, by site", room_list, False)
    p.add_argument("--site", help="only this site's")

    beacons = group("beacon", "beacons fixed in rooms")
    p = action(beacons, "add", "describe a beacon, in a room", beacon_add, True)
    p.add_argument("id")
    p.add_argument("--room", help="where it is fixed (default: no room yet)")
    p.add_argument("--label", help="e.g. above the door")
    p = action(beacons, "list", "list beacons", beacon_list, False)
    p.add_argument("--site", help="only those in this site's rooms")

    badges = group("badge", "badges and who wears them")
    p = action(badges, "add", "describe a badge (heard or not yet)", badge_add, True)
    p.add_argument("id")
    p.add_argument("--site", required=True)
    p.add_argument("--wearer", help="who wears it (never in the audit log)")
    action(badges, "list", "list badges", badge_list, False)

    for name, run_, write, help in (
        ("export", export_file, False, "write the rooms or beacons to FILE"),
        ("import", import_file_, True, "create or update rooms or beacons from FILE"),
    ):
        p = commands.add_parser(name, help=help, allow_abbrev=False)
        p.add_argument("file", metavar="FILE", help="ending in .csv or .json")
        p.add_argument("--kind", choices=KINDS)
        if name == "export":
            p.add_argument("--site", help="only this site's")
        p.set_defaults(run=run_, write=write)
    return parser


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
