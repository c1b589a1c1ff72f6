"""The registry: JSON API, and the admin pages of the house.

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
    HTTPSeeOther,
    HTTPUnsupportedMediaType,
)
from pyramid.response import Response
from pyramid.view import view_config

from ..audit.services import record
from ..ingest.schemas import parse_json
from ..security import ADMIN, VIEW
from .models import Badge, Beacon, Gateway, Room, Site
from .services import (
    BEACON_COLUMNS,
    ROOM_COLUMNS,
    ImportRefused,
    RegistryConflict,
    RegistryError,
    RegistryService,
    SeenService,
    local_time,
    timezones,
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


def _registry(request) -> RegistryService:
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


def _or_404(thing, what: str, key: str):
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
                rows.append(({"line": reader.line_num}, row))
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
        writer.writerow(cells)
    response = Response(
        body=out.getvalue().encode(), content_type="text/csv", charset="utf-8"
    )
    response.content_disposition = f'attachment; filename="{kind}.csv"'
    return response


def _site_filter(request) -> str | None:
    site = request.GET.get("site")
    if site is None or site == "":
        return None
    service = _registry(request)
    if service.site(site) is None:
        raise RegistryError("site", f"no site {site!r}")
    return site


def _record_import(request, kind: str, fmt: str, result: dict) -> dict:
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
    return {"sites": [site_json(site) for site in _registry(request).sites()]}


@view_config(
    route_name="registry.sites",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_create_site(request):
    data = json_object(request)
    site = _registry(request).create_site(
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


def _site(request) -> Site:
    key = request.matchdict["site_id"]
    return _or_404(_registry(request).site(key), "site", key)


@view_config(
    route_name="registry.site", request_method="GET", renderer="json", permission=VIEW
)
def api_site(request):
    return site_json(_site(request))


@view_config(
    route_name="registry.site", request_method="PUT", renderer="json", permission=ADMIN
)
def api_update_site(request):
    site = _site(request)
    data = json_object(request)
    changes = _registry(request).update_site(
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
    site = _site(request)
    _registry(request).delete_site(site)
    record(request, "site.delete", target=site.id)
    return Response(status=204)


# ---- rooms -------------------------------------------------------------------


@view_config(
    route_name="registry.rooms", request_method="GET", renderer="json", permission=VIEW
)
def api_rooms(request):
    rooms = _registry(request).rooms(_site_filter(request))
    return {"rooms": [room_json(room) for room in rooms]}


@view_config(
    route_name="registry.rooms",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_create_room(request):
    data = json_object(request)
    room = _registry(request).create_room(
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


def _room(request) -> Room:
    key = request.matchdict["room_id"]
    return _or_404(_registry(request).room(key), "room", key)


@view_config(
    route_name="registry.room", request_method="GET", renderer="json", permission=VIEW
)
def api_room(request):
    return room_json(_room(request))


@view_config(
    route_name="registry.room", request_method="PUT", renderer="json", permission=ADMIN
)
def api_update_room(request):
    room = _room(request)
    data = json_object(request)
    changes = _registry(request).update_room(
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
    room = _room(request)
    _registry(request).delete_room(room)
    record(request, "room.delete", target=room.id)
    return Response(status=204)


@view_config(
    route_name="registry.rooms.export",
    request_method="GET",
    permission=VIEW,
)
def api_export_rooms(request):
    return export_response(
        request, "rooms", _registry(request).export_rooms(_site_filter(request))
    )


@view_config(
    route_name="registry.rooms.import",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_import_rooms(request):
    fmt, rows = parse_import(request.content_type, _body(request, MAX_IMPORT_BYTES))
    result = _registry(request).import_rooms(rows)
    return _record_import(request, "rooms", fmt, result)


# ---- beacons -----------------------------------------------------------------


@view_config(
    route_name="registry.beacons",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def api_beacons(request):
    beacons = _registry(request).beacons(_site_filter(request))
    return {"beacons": [beacon_json(beacon) for beacon in beacons]}


def _record_beacon(request, beacon: Beacon, changes: dict) -> None:
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
    beacon = _registry(request).create_beacon(
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


def _beacon(request) -> Beacon:
    key = request.matchdict["beacon_id"]
    return _or_404(_registry(request).beacon(key), "beacon", key)


@view_config(
    route_name="registry.beacon", request_method="GET", renderer="json", permission=VIEW
)
def api_beacon(request):
    return beacon_json(_beacon(request))


@view_config(
    route_name="registry.beacon",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
)
def api_update_beacon(request):
    beacon = _beacon(request)
    data = json_object(request)
    changes = _registry(request).update_beacon(
        beacon, room_id=_given(data, "room"), label=_given(data, "label")
    )
    _record_beacon(request, beacon, changes)
    return beacon_json(beacon)


@view_config(
    route_name="registry.beacon",
    request_method="DELETE",
    renderer="json",
    permission=ADMIN,
)
def api_delete_beacon(request):
    beacon = _beacon(request)
    _registry(request).delete_beacon(beacon)
    record(request, "beacon.delete", target=beacon.id)
    return Response(status=204)


@view_config(
    route_name="registry.beacons.export",
    request_method="GET",
    permission=VIEW,
)
def api_export_beacons(request):
    return export_response(
        request, "beacons", _registry(request).export_beacons(_site_filter(request))
    )


@view_config(
    route_name="registry.beacons.import",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
)
def api_import_beacons(request):
    fmt, rows = parse_import(request.content_type, _body(request, MAX_IMPORT_BYTES))
    result = _registry(request).import_beacons(rows)
    return _record_import(request, "beacons", fmt, result)


# ---- gateways and badges as described ----------------------------------------


def _record_device(request, kind: str, row, created: bool, changes: dict) -> None:
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
    return {"gateways": [gateway_json(g) for g in _registry(request).gateways()]}


@view_config(
    route_name="registry.gateway",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def api_gateway(request):
    key = request.matchdict["gateway_id"]
    return gateway_json(_or_404(_registry(request).gateway(key), "gateway", key))


@view_config(
    route_name="registry.gateway",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
)
def api_save_gateway(request):
    data = json_object(request)
    gateway, created, changes = _registry(request).save_gateway(
        request.matchdict["gateway_id"],
        name=_given(data, "name"),
        site_id=_given(data, "site"),
    )
    _record_device(request, "gateway", gateway, created, changes)
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
    return {"badges": [badge_json(b) for b in _registry(request).badges()]}


@view_config(
    route_name="registry.badge",
    request_method="GET",
    renderer="json",
    permission=ADMIN,
)
def api_badge(request):
    key = request.matchdict["badge_id"]
    return badge_json(_or_404(_registry(request).badge(key), "badge", key))


@view_config(
    route_name="registry.badge",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
)
def api_save_badge(request):
    data = json_object(request)
    badge, created, changes = _registry(request).save_badge(
        request.matchdict["badge_id"],
        wearer=_given(data, "wearer"),
        site_id=_given(data, "site"),
        active=_given(data, "active"),
    )
    _record_device(request, "badge", badge, created, changes)
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
    unplaced = _registry(request).unplaced()
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


# ---- admin pages -------------------------------------------------------------
#
# As the other admin pages (stethoscope.admin.views): forms with the CSRF
# token, POST-redirect-GET with a flash, a refused change re-rendered with
# the reason next to the field (400, or 409 for a conflict), nothing written.

PAGES = "stethoscope:registry/templates/"


def _page(request, **values) -> dict:
    return {
        "flashes": request.session.pop_flash(),
        "local_time": local_time,
        "errors": {},
        **values,
    }


def _refuse(request, status: int = 400) -> None:
    request.tm.doom()
    request.response.status = status


def _form_errors(request, exc) -> dict:
    """Doom the transaction and answer 400/409; the errors for the template."""
    if isinstance(exc, RegistryConflict):
        _refuse(request, 409)
        return {"form": str(exc)}
    if isinstance(exc, ImportRefused):
        _refuse(request)
        return {"import": exc.errors}
    _refuse(request)
    return {exc.field: exc.message}


REFUSED = (RegistryError, RegistryConflict, ImportRefused)


def _back(request, route: str, **kw):
    return HTTPSeeOther(location=request.route_url(route, **kw))


def _house_page(request, **values) -> dict:
    service = _registry(request)
    sites = service.sites()
    rooms = service.rooms()
    beacons = service.beacons()
    placed: dict[str, int] = {}
    for beacon in beacons:
        if beacon.room_id:
            placed[beacon.room_id] = placed.get(beacon.room_id, 0) + 1
    values.setdefault("site_form", {"id": "", "name": "", "timezone": "UTC"})
    values.setdefault(
        "room_form", {"id": "", "name": "", "site": "", "floor": "", "adjacent": []}
    )
    return _page(
        request,
        sites=sites,
        rooms=rooms,
        placed=placed,
        timezones=timezones(),
        **values,
    )


@view_config(
    route_name="admin.house",
    request_method="GET",
    renderer=PAGES + "house.jinja2",
    permission=ADMIN,
)
def house_page(request):
    return _house_page(request)


@view_config(
    route_name="admin.house.sites",
    request_method="POST",
    renderer=PAGES + "house.jinja2",
    permission=ADMIN,
)
def page_create_site(request):
    form = {key: request.POST.get(key, "") for key in ("id", "name", "timezone")}
    try:
        site = _registry(request).create_site(
            form["id"].strip(), form["name"], form["timezone"]
        )
    except REFUSED as exc:
        return _house_page(
            request, site_form=form, errors={"site": _form_errors(request, exc)}
        )
    record(
        request,
        "site.create",
        target=site.id,
        details={"name": site.name, "timezone": site.timezone},
    )
    request.session.flash(f"Added site {site.id}.")
    return _back(request, "admin.house")


@view_config(
    route_name="admin.house.rooms",
    request_method="POST",
    renderer=PAGES + "house.jinja2",
    permission=ADMIN,
)
def page_create_room(request):
    form = {key: request.POST.get(key, "") for key in ("id", "name", "site", "floor")}
    form["adjacent"] = request.POST.getall("adjacent")
    try:
        room = _registry(request).create_room(
            form["id"].strip(),
            form["name"],
            form["site"],
            form["floor"],
            form["adjacent"],
        )
    except REFUSED as exc:
        return _house_page(
            request, room_form=form, errors={"room": _form_errors(request, exc)}
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
    request.session.flash(f"Added room {room.id}.")
    return _back(request, "admin.house")


@view_config(
    route_name="admin.house.import",
    request_method="POST",
    renderer=PAGES + "house.jinja2",
    permission=ADMIN,
)
def page_import(request):
    kind = request.POST.get("kind", "")
    upload = request.POST.get("file")
    try:
        if kind not in ("rooms", "beacons"):
            raise RegistryError("kind", "choose rooms or beacons")
        if not hasattr(upload, "file"):
            raise RegistryError("file", "choose a CSV or JSON file")
        body = upload.file.read(MAX_IMPORT_BYTES + 1)
        if len(body) > MAX_IMPORT_BYTES:
            raise RegistryError("file", f"at most {MAX_IMPORT_BYTES} bytes")
        is_json = upload.filename.lower().endswith(".json")
        fmt, rows = parse_import("application/json" if is_json else "text/csv", body)
        service = _registry(request)
        result = (
            service.import_rooms(rows)
            if kind == "rooms"
            else service.import_beacons(rows)
        )
    except REFUSED as exc:
        return _house_page(
            request, import_kind=kind, errors={"import": _form_errors(request, exc)}
        )
    counts = _record_import(request, kind, fmt, result)
    request.session.flash(
        f"Imported {kind}: {counts['created']} created, {counts['updated']} "
        f"updated, {counts['unchanged']} unchanged."
    )
    return _back(request, "admin.house")


# -- one site --


def _site_page(request, site: Site, **values) -> dict:
    return _page(
        request,
        site=site,
        rooms=_registry(request).rooms(site.id),
        timezones=timezones(),
        **values,
    )


@view_config(
    route_name="admin.house.site",
    request_method="GET",
    renderer=PAGES + "site.jinja2",
    permission=ADMIN,
)
def site_page(request):
    return _site_page(request, _site(request))


@view_config(
    route_name="admin.house.site",
    request_method="POST",
    renderer=PAGES + "site.jinja2",
    permission=ADMIN,
)
def page_change_site(request):
    site = _site(request)
    service = _registry(request)
    try:
        if request.POST.get("change") == "delete":
            service.delete_site(site)
            record(request, "site.delete", target=site.id)
            request.session.flash(f"Deleted site {site.id}.")
            return _back(request, "admin.house")
        changes = service.update_site(
            site,
            name=request.POST.get("name", ""),
            timezone=request.POST.get("timezone", ""),
        )
    except REFUSED as exc:
        return _site_page(request, site, errors=_form_errors(request, exc))
    if changes:
        record(request, "site.update", target=site.id, details=audit_details(changes))
    request.session.flash(f"Saved site {site.id}." if changes else "Nothing to change.")
    return _back(request, "admin.house.site", site_id=site.id)


# -- one room --


def _room_page(request, room: Room, form=None, **values) -> dict:
    service = _registry(request)
    return _page(
        request,
        room=room,
        sites=service.sites(),
        candidates=[r for r in service.rooms(room.site_id) if r.id != room.id],
        form=form
        or {
            "name": room.name,
            "site": room.site_id,
            "floor": "" if room.floor is None else str(room.floor),
            "adjacent": [other.id for other in room.adjacent],
        },
        beacons=[b for b in service.beacons() if b.room_id == room.id],
        **values,
    )


@view_config(
    route_name="admin.house.room",
    request_method="GET",
    renderer=PAGES + "room.jinja2",
    permission=ADMIN,
)
def room_page(request):
    return _room_page(request, _room(request))


@view_config(
    route_name="admin.house.room",
    request_method="POST",
    renderer=PAGES + "room.jinja2",
    permission=ADMIN,
)
def page_change_room(request):
    room = _room(request)
    service = _registry(request)
    form = {key: request.POST.get(key, "") for key in ("name", "site", "floor")}
    form["adjacent"] = request.POST.getall("adjacent")
    try:
        if request.POST.get("change") == "delete":
            service.delete_room(room)
            record(request, "room.delete", target=room.id)
            request.session.flash(f"Deleted room {room.id}.")
            return _back(request, "admin.house")
        changes = service.update_room(
            room,
            name=form["name"],
            site_id=form["site"],
            floor=form["floor"],
            adjacent=form["adjacent"],
        )
    except REFUSED as exc:
        errors = _form_errors(request, exc)
        return _room_page(request, room, form=form, errors=errors)
    if changes:
        record(request, "room.update", target=room.id, details=audit_details(changes))
    request.session.flash(f"Saved room {room.id}." if changes else "Nothing to change.")
    return _back(request, "admin.house.room", room_id=room.id)


# -- beacons --


def _beacons_page(request, **values) -> dict:
    service = _registry(request)
    values.setdefault("form", {"id": "", "room": "", "label": ""})
    return _page(request, beacons=service.beacons(), rooms=service.rooms(), **values)


@view_config(
    route_name="admin.house.beacons",
    request_method="GET",
    renderer=PAGES + "beacons.jinja2",
    permission=ADMIN,
)
def beacons_page(request):
    return _beacons_page(request)


@view_config(
    route_name="admin.house.beacons",
    request_method="POST",
    renderer=PAGES + "beacons.jinja2",
    permission=ADMIN,
)
def page_create_beacon(request):
    form = {key: request.POST.get(key, "") for key in ("id", "room", "label")}
    try:
        beacon = _registry(request).create_beacon(
            form["id"].strip(), form["room"], form["label"]
        )
    except REFUSED as exc:
        return _beacons_page(request, form=form, errors=_form_errors(request, exc))
    record(
        request,
        "beacon.create",
        target=beacon.id,
        details={"room": beacon.room_id, "label": beacon.label},
    )
    request.session.flash(f"Added beacon {beacon.id}.")
    return _back(request, "admin.house.beacons")


def _beacon_page(request, beacon: Beacon, **values) -> dict:
    return _page(request, beacon=beacon, rooms=_registry(request).rooms(), **values)


@view_config(
    route_name="admin.house.beacon",
    request_method="GET",
    renderer=PAGES + "beacon.jinja2",
    permission=ADMIN,
)
def beacon_page(request):
    return _beacon_page(request, _beacon(request))


def _next(request, default: str, **kw):
    # Only our own pages: the unplaced list sends its forms back to itself.
    if request.POST.get("next") == "unplaced":
        return _back(request, "admin.house.unplaced")
    return _back(request, default, **kw)


@view_config(
    route_name="admin.house.beacon",
    request_method="POST",
    renderer=PAGES + "beacon.jinja2",
    permission=ADMIN,
)
def page_change_beacon(request):
    beacon = _beacon(request)
    service = _registry(request)
    try:
        if request.POST.get("change") == "delete":
            service.delete_beacon(beacon)
            record(request, "beacon.delete", target=beacon.id)
            request.session.flash(f"Deleted beacon {beacon.id}.")
            return _back(request, "admin.house.beacons")
        values = {"room_id": request.POST.get("room", "")}
        if "label" in request.POST:
            values["label"] = request.POST["label"]
        changes = service.update_beacon(beacon, **values)
    except REFUSED as exc:
        if request.POST.get("next") == "unplaced":
            return _unplaced_refused(request, exc, beacon=beacon.id)
        return _beacon_page(request, beacon, errors=_form_errors(request, exc))
    _record_beacon(request, beacon, changes)
    where = f"in {beacon.room_id}" if beacon.room_id else "unplaced"
    request.session.flash(
        f"Saved beacon {beacon.id} ({where})." if changes else "Nothing to change."
    )
    return _next(request, "admin.house.beacon", beacon_id=beacon.id)


# -- gateways and badges --


@view_config(
    route_name="admin.house.devices",
    request_method="GET",
    renderer=PAGES + "devices.jinja2",
    permission=ADMIN,
)
def devices_page(request):
    service = _registry(request)
    zones = {site.id: site.timezone for site in service.sites()}
    return _page(
        request, gateways=service.gateways(), badges=service.badges(), zones=zones
    )


def _device_page(request, kind: str, device_id: str, **values) -> dict:
    service = _registry(request)
    row = service.gateway(device_id) if kind == "gateway" else service.badge(device_id)
    if row is None:
        # Describing a device before it is heard: an empty form.
        row = Gateway(id=device_id) if kind == "gateway" else Badge(id=device_id)
        if kind == "badge":
            row.active = True
    request.override_renderer = PAGES + "device.jinja2"
    zones = {site.id: site.timezone for site in service.sites()}
    return _page(
        request, kind=kind, row=row, sites=service.sites(), zones=zones, **values
    )


@view_config(
    route_name="admin.house.gateway",
    request_method="GET",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def gateway_page(request):
    return _device_page(request, "gateway", request.matchdict["gateway_id"])


@view_config(
    route_name="admin.house.badge",
    request_method="GET",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def badge_page(request):
    return _device_page(request, "badge", request.matchdict["badge_id"])


@view_config(
    route_name="admin.house.gateway",
    request_method="POST",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def page_save_gateway(request):
    gateway_id = request.matchdict["gateway_id"]
    values = {"site_id": request.POST.get("site", "")}
    if "name" in request.POST:
        values["name"] = request.POST["name"]
    try:
        gateway, created, changes = _registry(request).save_gateway(
            gateway_id, **values
        )
    except REFUSED as exc:
        return _device_page(
            request, "gateway", gateway_id, errors=_form_errors(request, exc)
        )
    _record_device(request, "gateway", gateway, created, changes)
    request.session.flash(
        f"Saved gateway {gateway.id}." if created or changes else "Nothing to change."
    )
    return _back(request, "admin.house.devices")


@view_config(
    route_name="admin.house.badge",
    request_method="POST",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def page_save_badge(request):
    badge_id = request.matchdict["badge_id"]
    values = {"site_id": request.POST.get("site", "")}
    if "wearer" in request.POST:
        values["wearer"] = request.POST["wearer"]
    if "active" in request.POST:
        values["active"] = request.POST["active"] == "true"
    try:
        badge, created, changes = _registry(request).save_badge(badge_id, **values)
    except REFUSED as exc:
        if request.POST.get("next") == "unplaced":
            return _unplaced_refused(request, exc, badge=badge_id)
        return _device_page(
            request, "badge", badge_id, errors=_form_errors(request, exc)
        )
    _record_device(request, "badge", badge, created, changes)
    request.session.flash(
        f"Saved badge {badge.id}." if created or changes else "Nothing to change."
    )
    return _next(request, "admin.house.devices")


# -- unplaced --


def _unplaced_page(request, **values) -> dict:
    service = _registry(request)
    request.override_renderer = PAGES + "unplaced.jinja2"
    return _page(
        request,
        unplaced=service.unplaced(),
        rooms=service.rooms(),
        sites=service.sites(),
        **values,
    )


def _unplaced_refused(request, exc, **which) -> dict:
    ((kind, key),) = which.items()
    return _unplaced_page(request, errors={kind: {key: _form_errors(request, exc)}})


@view_config(
    route_name="admin.house.unplaced",
    request_method="GET",
    renderer=PAGES + "unplaced.jinja2",
    permission=ADMIN,
)
def unplaced_page(request):
    return _unplaced_page(request)
