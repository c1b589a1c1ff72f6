"""The registry's JSON API (the admin pages are in stethoscope.registry.pages).

Reads of sites, rooms, beacons and gateways need VIEW: they name places
and devices, not people, and the dashboard needs them. Badges with their
wearers, the unplaced list and every change need ADMIN: a wearer's name
next to a badge id is what turns "badge 17 is in the lounge" into where a
person is. Every change is audit-logged in its own transaction; a wearer's
name never goes into the log ("wearer": "changed").

JSON writes made with the session cookie need the X-CSRF-Token header
(Pyramid's default for every unsafe method). Errors: 400 ``invalid`` with
``errors`` naming the fields (and, for imports, the line or index), 404,
409 ``conflict``.
"""

import csv
import io

from pyramid.httpexceptions import (
    HTTPNotFound,
    HTTPRequestEntityTooLarge,
    HTTPUnsupportedMediaType,
)
from pyramid.response import Response
from pyramid.view import view_config

from ..audit.services import record
from ..ingest.schemas import IDENTIFIER, parse_json
from ..labels.csvio import escape_cell, unescape_cell
from ..permissions import ADMIN, VIEW
from .models import Badge, Beacon, Gateway, Room, Site
from .services import (
    BEACON_COLUMNS,
    ROOM_COLUMNS,
    ImportRefused,
    RegistryConflict,
    RegistryError,
    RegistryService,
    SeenService,
)

# One object of the API, and one import file (JSON or CSV). waitress caps
# every body at 2 MiB before this.
MAX_BODY_BYTES = 64 << 10
MAX_IMPORT_BYTES = 1 << 20
MAX_IMPORT_ROWS = 10_000
# Ids of the changed rooms or beacons an import's audit event lists.
AUDIT_IDS = 100


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def site_json(site: Site) -> dict:
    return {
        "id": site.id,
        "name": site.name,
        "timezone": site.timezone,
        "created_at": _iso(site.created_at),
    }


def room_json(room: Room) -> dict:
    return {
        "id": room.id,
        "name": room.name,
        "site": room.site_id,
        "floor": room.floor,
        "adjacent": [other.id for other in room.adjacent],
    }


def beacon_json(beacon: Beacon) -> dict:
    return {
        "id": beacon.id,
        "room": beacon.room_id,
        "label": beacon.label,
        "first_heard": _iso(beacon.first_heard),
        "last_heard": _iso(beacon.last_heard),
    }


def gateway_json(gateway: Gateway) -> dict:
    return {
        "id": gateway.id,
        "name": gateway.name,
        "site": gateway.site_id,
        "first_seen": _iso(gateway.first_seen),
        "last_seen": _iso(gateway.last_seen),
        "last_ip": gateway.last_ip,
        "posts": gateway.posts or 0,
        "duplicates": gateway.duplicates or 0,
    }


def badge_json(badge: Badge) -> dict:
    return {
        "id": badge.id,
        "wearer": badge.wearer,
        "site": badge.site_id,
        "active": badge.active,
        "first_seen": _iso(badge.first_seen),
        "last_seen": _iso(badge.last_seen),
        "last_gateway_id": badge.last_gateway_id,
    }


# Column names in audit details and errors: what the API calls them.
_PUBLIC_NAMES = {"site_id": "site", "room_id": "room"}


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


def registry_service(request) -> RegistryService:
    return request.find_service(RegistryService)


# ---- errors ------------------------------------------------------------------


@view_config(context=RegistryError, renderer="json")
def registry_error(exc, request):
    request.response.status = 400
    return {
        "status": 400,
        "error": "invalid",
        "message": str(exc),
        "errors": [{"field": exc.field, "message": exc.message}],
    }


@view_config(context=ImportRefused, renderer="json")
def import_refused(exc, request):
    request.response.status = 400
    return {
        "status": 400,
        "error": "invalid",
        "message": str(exc),
        "errors": exc.errors,
    }


@view_config(context=RegistryConflict, renderer="json")
def registry_conflict(exc, request):
    request.response.status = 409
    return {"status": 409, "error": "conflict", "message": str(exc)}


# ---- reading bodies ----------------------------------------------------------


def _body(request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise HTTPRequestEntityTooLarge(f"the body may be at most {limit} bytes")
    body = request.body
    if len(body) > limit:
        raise HTTPRequestEntityTooLarge(f"the body may be at most {limit} bytes")
    return body


def json_object(request) -> dict:
    """The body: one JSON object, at most MAX_BODY_BYTES."""
    if request.content_type != "application/json":
        raise HTTPUnsupportedMediaType("Content-Type must be application/json")
    data = parse_json(_body(request, MAX_BODY_BYTES))
    if not isinstance(data, dict):
        raise RegistryError("body", "must be a JSON object")
    return data


def _given(data: dict, key: str):
    """The value of ``key``, or ... when the body leaves it out."""
    return data.get(key, ...)


def _text(data: dict, key: str):
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RegistryError(key, "must be a string")
    return value


def _or_404(find, what: str, key: str):
    """``find(key)``, or 404 when it finds nothing.

    A key that is no identifier is not looked up: every id here is one,
    and PostgreSQL answers a NUL in a query's text with an error.
    """
    thing = find(key) if IDENTIFIER.fullmatch(key) else None
    if thing is None:
        raise HTTPNotFound(f"no {what} {key!r}")
    return thing


def parse_import(content_type: str, body: bytes) -> tuple[str, list]:
    """(format, [(where, row), ...]) of an import file, CSV or JSON.

    JSON: a list of objects (or {"rooms": [...]} / {"beacons": [...]}, as
    the export writes it). CSV: a header row naming the columns.
    """
    if content_type in ("application/json",):
        data = parse_json(body)
        if isinstance(data, dict) and len(data) == 1:
            data = next(iter(data.values()))
        if not isinstance(data, list):
            raise RegistryError("body", "must be a JSON list of objects")
        if len(data) > MAX_IMPORT_ROWS:
            raise RegistryError("body", f"at most {MAX_IMPORT_ROWS} rows")
        rows = []
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise ImportRefused(
                    [{"index": index, "field": "body", "message": "must be an object"}]
                )
            rows.append(({"index": index}, item))
        return "json", rows
    if content_type in ("text/csv", "text/plain", "application/csv"):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RegistryError("body", "CSV must be UTF-8") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise RegistryError("body", "CSV needs a header row")
        rows = []
        try:
            for row in reader:
                if len(rows) >= MAX_IMPORT_ROWS:
                    raise RegistryError("body", f"at most {MAX_IMPORT_ROWS} rows")
                # Cells our export wrote as text (export_response) read back.
                cells = {
                    key: unescape_cell(value) if isinstance(value, str) else value
                    for key, value in row.items()
                }
                rows.append(({"line": reader.line_num}, cells))
        except csv.Error as exc:
            raise ImportRefused(
                [{"line": reader.line_num, "field": "body", "message": str(exc)}]
            ) from None
        return "csv", rows
    raise HTTPUnsupportedMediaType("Content-Type must be text/csv or application/json")


def export_response(request, kind: str, rows: list[dict]) -> Response:
    fmt = request.GET.get("format", "json")
    if fmt == "json":
        response = Response(json_body={kind: rows})
        response.content_disposition = f'attachment; filename="{kind}.json"'
        return response
    if fmt != "csv":
        raise RegistryError("format", "must be csv or json")
    columns = ROOM_COLUMNS if kind == "rooms" else BEACON_COLUMNS
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells = {key: ("" if value is None else value) for key, value in row.items()}
        if "adjacent" in cells:
            cells["adjacent"] = ";".join(row["adjacent"])
        # Names and ids are text an admin or a gateway chose: one that a
        # spreadsheet would run as a formula (=, +, -, @) is written as text,
        # as the labelled export does; the import reads it back. The floor
        # is a number and stays one.
        writer.writerow(
            {
                key: escape_cell(value) if isinstance(value, str) else value
                for key, value in cells.items()
            }
        )
    response = Response(
        body=out.getvalue().encode(), content_type="text/csv", charset="utf-8"
    )
    response.content_disposition = f'attachment; filename="{kind}.csv"'
    return response


def _site_filter(request) -> str | None:
    site = request.GET.get("site")
    if site is None or site == "":
        return None
    if not IDENTIFIER.fullmatch(site) or registry_service(request).site(site) is None:
        raise RegistryError("site", f"no site {site!r}")
    return site


def record_import(request, kind: str, fmt: str, result: dict) -> dict:
    counts = {key: len(ids) for key, ids in result.items()}
    record(
        request,
        f"{kind[:-1]}.import",
        details={
            "format": fmt,
            **counts,
            "created_ids": result["created"][:AUDIT_IDS],
            "updated_ids": result["updated"][:AUDIT_IDS],
        },
    )
    return {
        **counts,
        "created_ids": result["created"],
        "updated_ids": result["updated"],
    }


# ---- gateways and badges as seen (traffic) -----------------------------------


@view_config(
    route_name="registry.gateways",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def list_gateways(request):
    return {"gateways": request.find_service(SeenService).gateways()}


@view_config(
    route_name="registry.badges", request_method="GET", renderer="json", permission=VIEW
)
def list_badges(request):
    return {"badges": request.find_service(SeenService).badges()}


# ---- sites -------------------------------------------------------------------


@view_config(
    route_name="registry.sites", request_method="GET", renderer="json", permission=VIEW
)
def api_sites(request):
    return {"sites": [site_json(site) for site in registry_service(request).sites()]}


@view_config(
    route_name="registry.sites",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_create_site(request):
    data = json_object(request)
    site = registry_service(request).create_site(
        data.get("id"), data.get("name"), data.get("timezone")
    )
    record(
        request,
        "site.create",
        target=site.id,
        details={"name": site.name, "timezone": site.timezone},
    )
    request.response.status = 201
    return site_json(site)


def site_or_404(request) -> Site:
    key = request.matchdict["site_id"]
    return _or_404(registry_service(request).site, "site", key)


@view_config(
    route_name="registry.site", request_method="GET", renderer="json", permission=VIEW
)
def api_site(request):
    return site_json(site_or_404(request))


@view_config(
    route_name="registry.site", request_method="PUT", renderer="json", permission=ADMIN
)
def api_update_site(request):
    site = site_or_404(request)
    data = json_object(request)
    changes = registry_service(request).update_site(
        site, name=_text(data, "name"), timezone=_text(data, "timezone")
    )
    if changes:
        record(request, "site.update", target=site.id, details=audit_details(changes))
    return site_json(site)


@view_config(
    route_name="registry.site",
    request_method="DELETE",
    renderer="json",
    permission=ADMIN,
)
def api_delete_site(request):
    site = site_or_404(request)
    registry_service(request).delete_site(site)
    record(request, "site.delete", target=site.id)
    return Response(status=204)


# ---- rooms -------------------------------------------------------------------


@view_config(
    route_name="registry.rooms", request_method="GET", renderer="json", permission=VIEW
)
def api_rooms(request):
    rooms = registry_service(request).rooms(_site_filter(request))
    return {"rooms": [room_json(room) for room in rooms]}


@view_config(
    route_name="registry.rooms",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_create_room(request):
    data = json_object(request)
    room = registry_service(request).create_room(
        data.get("id"),
        data.get("name"),
        data.get("site"),
        data.get("floor"),
        data.get("adjacent"),
    )
    record(
        request,
        "room.create",
        target=room.id,
        details={
            "name": room.name,
            "site": room.site_id,
            "floor": room.floor,
            "adjacent": [other.id for other in room.adjacent],
        },
    )
    request.response.status = 201
    return room_json(room)


def room_or_404(request) -> Room:
    key = request.matchdict["room_id"]
    return _or_404(registry_service(request).room, "room", key)


@view_config(
    route_name="registry.room", request_method="GET", renderer="json", permission=VIEW
)
def api_room(request):
    return room_json(room_or_404(request))


@view_config(
    route_name="registry.room", request_method="PUT", renderer="json", permission=ADMIN
)
def api_update_room(request):
    room = room_or_404(request)
    data = json_object(request)
    changes = registry_service(request).update_room(
        room,
        name=_text(data, "name"),
        site_id=_text(data, "site"),
        floor=_given(data, "floor"),
        adjacent=data.get("adjacent"),
    )
    if changes:
        record(request, "room.update", target=room.id, details=audit_details(changes))
    return room_json(room)


@view_config(
    route_name="registry.room",
    request_method="DELETE",
    renderer="json",
    permission=ADMIN,
)
def api_delete_room(request):
    room = room_or_404(request)
    registry_service(request).delete_room(room)
    record(request, "room.delete", target=room.id)
    return Response(status=204)


@view_config(
    route_name="registry.rooms.export",
    request_method="GET",
    permission=VIEW,
)
def api_export_rooms(request):
    return export_response(
        request, "rooms", registry_service(request).export_rooms(_site_filter(request))
    )


@view_config(
    route_name="registry.rooms.import",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_import_rooms(request):
    fmt, rows = parse_import(request.content_type, _body(request, MAX_IMPORT_BYTES))
    result = registry_service(request).import_rooms(rows)
    return record_import(request, "rooms", fmt, result)


# ---- beacons -----------------------------------------------------------------


@view_config(
    route_name="registry.beacons",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def api_beacons(request):
    beacons = registry_service(request).beacons(_site_filter(request))
    return {"beacons": [beacon_json(beacon) for beacon in beacons]}


def record_beacon(request, beacon: Beacon, changes: dict) -> None:
    if "room_id" in changes:
        record(
            request, "beacon.place", target=beacon.id, details=audit_details(changes)
        )
    elif changes:
        record(
            request, "beacon.update", target=beacon.id, details=audit_details(changes)
        )


@view_config(
    route_name="registry.beacons",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_create_beacon(request):
    data = json_object(request)
    beacon = registry_service(request).create_beacon(
        data.get("id"), data.get("room"), data.get("label")
    )
    record(
        request,
        "beacon.create",
        target=beacon.id,
        details={"room": beacon.room_id, "label": beacon.label},
    )
    request.response.status = 201
    return beacon_json(beacon)


def beacon_or_404(request) -> Beacon:
    key = request.matchdict["beacon_id"]
    return _or_404(registry_service(request).beacon, "beacon", key)


@view_config(
    route_name="registry.beacon", request_method="GET", renderer="json", permission=VIEW
)
def api_beacon(request):
    return beacon_json(beacon_or_404(request))


@view_config(
    route_name="registry.beacon",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
)
def api_update_beacon(request):
    beacon = beacon_or_404(request)
    data = json_object(request)
    changes = registry_service(request).update_beacon(
        beacon, room_id=_given(data, "room"), label=_given(data, "label")
    )
    record_beacon(request, beacon, changes)
    return beacon_json(beacon)


@view_config(
    route_name="registry.beacon",
    request_method="DELETE",
    renderer="json",
    permission=ADMIN,
)
def api_delete_beacon(request):
    beacon = beacon_or_404(request)
    registry_service(request).delete_beacon(beacon)
    record(request, "beacon.delete", target=beacon.id)
    return Response(status=204)


@view_config(
    route_name="registry.beacons.export",
    request_method="GET",
    permission=VIEW,
)
def api_export_beacons(request):
    return export_response(
        request,
        "beacons",
        registry_service(request).export_beacons(_site_filter(request)),
    )


@view_config(
    route_name="registry.beacons.import",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_import_beacons(request):
    fmt, rows = parse_import(request.content_type, _body(request, MAX_IMPORT_BYTES))
    result = registry_service(request).import_beacons(rows)
    return record_import(request, "beacons", fmt, result)


# ---- gateways and badges as described ----------------------------------------


def record_device(request, kind: str, row, created: bool, changes: dict) -> None:
    if created or changes:
        record(
            request,
            f"{kind}.{'create' if created else 'update'}",
            target=row.id,
            details=audit_details(changes),
        )


@view_config(
    route_name="registry.gateway_list",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def api_gateway_list(request):
    return {"gateways": [gateway_json(g) for g in registry_service(request).gateways()]}


@view_config(
    route_name="registry.gateway",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def api_gateway(request):
    key = request.matchdict["gateway_id"]
    return gateway_json(_or_404(registry_service(request).gateway, "gateway", key))


@view_config(
    route_name="registry.gateway",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
)
def api_save_gateway(request):
    data = json_object(request)
    gateway, created, changes = registry_service(request).save_gateway(
        request.matchdict["gateway_id"],
        name=_given(data, "name"),
        site_id=_given(data, "site"),
    )
    record_device(request, "gateway", gateway, created, changes)
    if created:
        request.response.status = 201
    return gateway_json(gateway)


@view_config(
    route_name="registry.badge_list",
    request_method="GET",
    renderer="json",
    permission=ADMIN,
)
def api_badge_list(request):
    return {"badges": [badge_json(b) for b in registry_service(request).badges()]}


@view_config(
    route_name="registry.badge",
    request_method="GET",
    renderer="json",
    permission=ADMIN,
)
def api_badge(request):
    key = request.matchdict["badge_id"]
    return badge_json(_or_404(registry_service(request).badge, "badge", key))


@view_config(
    route_name="registry.badge",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
)
def api_save_badge(request):
    data = json_object(request)
    badge, created, changes = registry_service(request).save_badge(
        request.matchdict["badge_id"],
        wearer=_given(data, "wearer"),
        site_id=_given(data, "site"),
        active=_given(data, "active"),
    )
    record_device(request, "badge", badge, created, changes)
    if created:
        request.response.status = 201
    return badge_json(badge)


@view_config(
    route_name="registry.unplaced",
    request_method="GET",
    renderer="json",
    permission=ADMIN,
)
def api_unplaced(request):
    unplaced = registry_service(request).unplaced()
    return {
        "beacons": [beacon_json(beacon) for beacon in unplaced["beacons"]],
        "badges": [
            {
                "id": badge.id,
                "first_seen": _iso(badge.first_seen),
                "last_seen": _iso(badge.last_seen),
                "last_gateway_id": badge.last_gateway_id,
            }
            for badge in unplaced["badges"]
        ],
    }
