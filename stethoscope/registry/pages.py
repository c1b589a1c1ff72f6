"""The admin pages of the house: sites, rooms, beacons, gateways, badges.

ADMIN only. Forms post back with the CSRF token; a refused form comes back
with the error next to its field (400, or 409 for a conflict) and nothing
written; a change redirects with a flash message. The forms' values are
checked by the same models as the JSON API's bodies
(stethoscope.registry.schemas), and RegistryService audit-logs the change
as it does for the API.
"""

import pydantic
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..endpoints import field_errors
from ..errors import Invalid, NotFound, ServiceError, ValidationError
from ..ops.params import form_text, form_texts
from ..permissions import ADMIN
from ..schemas import IDENTIFIER
from . import transfer
from .models import Badge, Beacon, Gateway, Room, Site
from .schemas import (
    MAX_IMPORT_BYTES,
    BadgeChange,
    BeaconChange,
    BeaconIn,
    GatewayChange,
    RoomChange,
    RoomIn,
    SiteChange,
    SiteIn,
    timezones,
)
from .services import RegistryService, local_time

# ---- admin pages -------------------------------------------------------------
#
# As the other admin pages (stethoscope.admin.views): forms with the CSRF
# token, POST-redirect-GET with a flash, a refused change re-rendered with
# the reason next to the field (400, or 409 for a conflict), nothing written.

PAGES = "stethoscope:registry/templates/"
# The text fields of the add-room form; the room page's are these but the id.
ROOM_FORM = ("id", "name", "site", "floor", "max_stay_minutes")


def registry(request) -> RegistryService:
    return request.find_service(RegistryService)


def _form(model, **values):
    """The form's values as ``model``; Invalid naming the fields if not."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


def _page(request, **values) -> dict:
    return {
        "flashes": request.session.pop_flash(),
        "local_time": local_time,
        "errors": {},
        **values,
    }


def _form_errors(request, exc: ServiceError) -> dict:
    """Doom the transaction and answer 400/409; the errors for the template:
    each field's message by the field's name, a conflict's as "form"."""
    request.tm.doom()
    request.response.status = exc.status
    if isinstance(exc, Invalid):
        errors = {}
        for error in exc.errors:
            errors.setdefault(error.field.split(".")[0], error.message)
        return errors
    return {"form": exc.message}


def _import_errors(request, exc: ServiceError) -> dict:
    """An import's errors: the file's next to the file field, the rows' as
    a list ("line 3, room: no room 'attic'")."""
    request.tm.doom()
    request.response.status = exc.status
    errors: dict = {}
    for error in getattr(exc, "errors", ()):
        if error.field in ("kind", "file", "body"):
            errors["file" if error.field == "body" else error.field] = error.message
            continue
        where, _, field = error.field.partition(".")
        if where.isdigit():
            where = f"item {where}"
        errors.setdefault("import", []).append(
            f"{where}, {field}: {error.message}"
            if field
            else f"{where}: {error.message}"
        )
    return errors


def _back(request, route: str, **kw):
    return HTTPSeeOther(location=request.route_url(route, **kw))


def _house_page(request, **values) -> dict:
    service = registry(request)
    sites = service.sites()
    rooms = service.rooms()
    beacons = service.beacons()
    placed: dict[str, int] = {}
    for beacon in beacons:
        if beacon.room_id:
            placed[beacon.room_id] = placed.get(beacon.room_id, 0) + 1
    values.setdefault("site_form", {"id": "", "name": "", "timezone": "UTC"})
    values.setdefault("room_form", {**dict.fromkeys(ROOM_FORM, ""), "adjacent": []})
    values.setdefault("max_stay_values", {})
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
    form = {key: form_text(request.POST, key) for key in ("id", "name", "timezone")}
    try:
        site = registry(request).create_site(
            _form(SiteIn, **{**form, "id": form["id"].strip()})
        )
    except ServiceError as exc:
        return _house_page(
            request, site_form=form, errors={"site": _form_errors(request, exc)}
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
    form = {key: form_text(request.POST, key) for key in ROOM_FORM}
    form["adjacent"] = form_texts(request.POST, "adjacent")
    try:
        room = registry(request).create_room(
            _form(RoomIn, **{**form, "id": form["id"].strip()})
        )
    except ServiceError as exc:
        return _house_page(
            request, room_form=form, errors={"room": _form_errors(request, exc)}
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
    kind = form_text(request.POST, "kind")
    upload = request.POST.get("file")
    try:
        if kind not in transfer.KINDS:
            raise ValidationError("kind", "choose rooms or beacons")
        if not hasattr(upload, "file"):
            raise ValidationError("file", "choose a CSV or JSON file")
        body = upload.file.read(MAX_IMPORT_BYTES + 1)
        if len(body) > MAX_IMPORT_BYTES:
            raise ValidationError("file", f"at most {MAX_IMPORT_BYTES} bytes")
        is_json = (upload.filename or "").lower().endswith(".json")
        result = transfer.import_file(
            registry(request),
            kind,
            "application/json" if is_json else "text/csv",
            body,
        )
    except ServiceError as exc:
        return _house_page(
            request, import_kind=kind, errors={"import": _import_errors(request, exc)}
        )
    request.session.flash(
        f"Imported {kind}: {result.created} created, {result.updated} "
        f"updated, {result.unchanged} unchanged."
    )
    return _back(request, "admin.house")


# -- one site --


def _site_page(request, site: Site, **values) -> dict:
    return _page(
        request,
        site=site,
        rooms=registry(request).rooms(site.id),
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
    return _site_page(request, registry(request).get_site(request.matchdict["site_id"]))


@view_config(
    route_name="admin.house.site",
    request_method="POST",
    renderer=PAGES + "site.jinja2",
    permission=ADMIN,
)
def page_change_site(request):
    service = registry(request)
    site = service.get_site(request.matchdict["site_id"])
    # A file for a text field is refused (400) before the page is shown
    # again with what was posted.
    values = {key: form_text(request.POST, key) for key in ("name", "timezone")}
    try:
        if request.POST.get("change") == "delete":
            service.delete_site(site)
            request.session.flash(f"Deleted site {site.id}.")
            return _back(request, "admin.house")
        changes = service.update_site(site, _form(SiteChange, **values))
    except ServiceError as exc:
        return _site_page(request, site, errors=_form_errors(request, exc))
    request.session.flash(f"Saved site {site.id}." if changes else "Nothing to change.")
    return _back(request, "admin.house.site", site_id=site.id)


# -- one room --


def _room_page(request, room: Room, form=None, **values) -> dict:
    service = registry(request)
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
            "max_stay_minutes": (
                "" if room.max_stay_minutes is None else str(room.max_stay_minutes)
            ),
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
    return _room_page(request, registry(request).get_room(request.matchdict["room_id"]))


@view_config(
    route_name="admin.house.room",
    request_method="POST",
    renderer=PAGES + "room.jinja2",
    permission=ADMIN,
)
def page_change_room(request):
    service = registry(request)
    room = service.get_room(request.matchdict["room_id"])
    if request.POST.get("change") == "max_stay":
        return _change_max_stay(request, room)
    form = {key: form_text(request.POST, key) for key in ROOM_FORM[1:]}
    form["adjacent"] = form_texts(request.POST, "adjacent")
    try:
        if request.POST.get("change") == "delete":
            service.delete_room(room)
            request.session.flash(f"Deleted room {room.id}.")
            return _back(request, "admin.house")
        changes = service.update_room(room, _form(RoomChange, **form))
    except ServiceError as exc:
        errors = _form_errors(request, exc)
        return _room_page(request, room, form=form, errors=errors)
    request.session.flash(f"Saved room {room.id}." if changes else "Nothing to change.")
    return _back(request, "admin.house.room", room_id=room.id)


def _change_max_stay(request, room: Room):
    """The form beside each room on the house page: its limit alone; a
    refused one comes back on the house page, next to the room's form."""
    value = form_text(request.POST, "max_stay_minutes")
    try:
        changes = registry(request).update_room(
            room, _form(RoomChange, max_stay_minutes=value)
        )
    except ServiceError as exc:
        request.override_renderer = PAGES + "house.jinja2"
        return _house_page(
            request,
            max_stay_values={room.id: value},
            errors={"max_stay": {room.id: _form_errors(request, exc)}},
        )
    if not changes:
        request.session.flash("Nothing to change.")
    elif room.max_stay_minutes is None:
        request.session.flash(f"Room {room.id}: no max stay.")
    else:
        request.session.flash(
            f"Room {room.id}: max stay {room.max_stay_minutes} minutes."
        )
    return _back(request, "admin.house", _anchor="rooms")


# -- beacons --


def _beacons_page(request, **values) -> dict:
    service = registry(request)
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
    form = {key: form_text(request.POST, key) for key in ("id", "room", "label")}
    try:
        beacon = registry(request).create_beacon(
            _form(BeaconIn, **{**form, "id": form["id"].strip()})
        )
    except ServiceError as exc:
        return _beacons_page(request, form=form, errors=_form_errors(request, exc))
    request.session.flash(f"Added beacon {beacon.id}.")
    return _back(request, "admin.house.beacons")


def _beacon_page(request, beacon: Beacon, **values) -> dict:
    return _page(request, beacon=beacon, rooms=registry(request).rooms(), **values)


@view_config(
    route_name="admin.house.beacon",
    request_method="GET",
    renderer=PAGES + "beacon.jinja2",
    permission=ADMIN,
)
def beacon_page(request):
    return _beacon_page(
        request, registry(request).get_beacon(request.matchdict["beacon_id"])
    )


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
    service = registry(request)
    beacon = service.get_beacon(request.matchdict["beacon_id"])
    values = {"room": form_text(request.POST, "room")}
    if "label" in request.POST:
        values["label"] = form_text(request.POST, "label")
    try:
        if request.POST.get("change") == "delete":
            service.delete_beacon(beacon)
            request.session.flash(f"Deleted beacon {beacon.id}.")
            return _back(request, "admin.house.beacons")
        changes = service.update_beacon(beacon, _form(BeaconChange, **values))
    except ServiceError as exc:
        if request.POST.get("next") == "unplaced":
            return _unplaced_refused(request, exc, beacon=beacon.id)
        return _beacon_page(request, beacon, errors=_form_errors(request, exc))
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
    service = registry(request)
    zones = {site.id: site.timezone for site in service.sites()}
    return _page(
        request, gateways=service.gateways(), badges=service.badges(), zones=zones
    )


def _device_page(request, kind: str, device_id: str, **values) -> dict:
    service = registry(request)
    row = None
    # An id that is no identifier is not looked up (PostgreSQL refuses a NUL
    # in a query): the refused form comes back with the service's reason.
    if IDENTIFIER.fullmatch(device_id):
        find = service.gateway if kind == "gateway" else service.badge
        row = find(device_id)
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


def _device_id(request, kind: str) -> str:
    """The id in the path; 404 for one no device can have (the form to
    describe it could never be saved)."""
    device_id = request.matchdict[f"{kind}_id"]
    if not IDENTIFIER.fullmatch(device_id):
        raise NotFound(f"no {kind} {device_id!r}")
    return device_id


@view_config(
    route_name="admin.house.gateway",
    request_method="GET",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def gateway_page(request):
    return _device_page(request, "gateway", _device_id(request, "gateway"))


@view_config(
    route_name="admin.house.badge",
    request_method="GET",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def badge_page(request):
    return _device_page(request, "badge", _device_id(request, "badge"))


@view_config(
    route_name="admin.house.gateway",
    request_method="POST",
    renderer=PAGES + "device.jinja2",
    permission=ADMIN,
)
def page_save_gateway(request):
    gateway_id = request.matchdict["gateway_id"]
    values = {"site": form_text(request.POST, "site")}
    if "name" in request.POST:
        values["name"] = form_text(request.POST, "name")
    try:
        gateway, created, changes = registry(request).save_gateway(
            gateway_id, _form(GatewayChange, **values)
        )
    except ServiceError as exc:
        return _device_page(
            request, "gateway", gateway_id, errors=_form_errors(request, exc)
        )
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
    values = {"site": form_text(request.POST, "site")}
    if "wearer" in request.POST:
        values["wearer"] = form_text(request.POST, "wearer")
    if "active" in request.POST:
        values["active"] = request.POST["active"] == "true"
    try:
        badge, created, changes = registry(request).save_badge(
            badge_id, _form(BadgeChange, **values)
        )
    except ServiceError as exc:
        if request.POST.get("next") == "unplaced":
            return _unplaced_refused(request, exc, badge=badge_id)
        return _device_page(
            request, "badge", badge_id, errors=_form_errors(request, exc)
        )
    request.session.flash(
        f"Saved badge {badge.id}." if created or changes else "Nothing to change."
    )
    return _next(request, "admin.house.devices")


# -- unplaced --


def _unplaced_page(request, **values) -> dict:
    service = registry(request)
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
