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

from ..endpoints import field_errors
from ..errors import Invalid, NotFound, ServiceError, ValidationError
from ..ops.params import form_text, form_texts
from ..pages import page
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
BEACONS_ROUTE = "admin.house.beacons"
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


def _row(request, model):
    """The row of ``model`` the path names (``site_id``, …), or 404."""
    key = request.matchdict[f"{model.__name__.lower()}_id"]
    return registry(request).get(model, key)


def _texts(request, *names: str) -> dict:
    """The posted text of each field ``names``; a file for one is refused
    (400) before the page is shown again with what was posted."""
    return {name: form_text(request.POST, name) for name in names}


def _add(request, kind: str, create, model, form: dict, refused, back: str):
    """Add a ``kind`` with ``create`` from ``form`` (its id trimmed): to the
    page ``back`` with a flash, or ``refused(errors)``, the page again."""
    try:
        row = create(_form(model, **{**form, "id": form["id"].strip()}))
    except ServiceError as exc:
        return refused(_form_errors(request, exc))
    request.session.flash(f"Added {kind} {row.id}.")
    return _back(request, back)


def _deleted(request, kind: str, row, delete, route: str):
    """The item page's delete button: ``delete(row)`` and back to ``route``."""
    delete(row)
    request.session.flash(f"Deleted {kind} {row.id}.")
    return _back(request, route)


def _saved(request, saved: str, changes, route: str, **kw):
    """After an item page's save: ``saved`` or that nothing changed."""
    request.session.flash(saved if changes else "Nothing to change.")
    return _back(request, route, **kw)


@page("admin.house", ADMIN, PAGES + "house.jinja2")
def house_page(request, **values) -> dict:
    """The house page; again, with ``values``, for a refused form."""
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


@page("admin.house.sites", ADMIN, PAGES + "house.jinja2", request_method="POST")
def page_create_site(request):
    form = _texts(request, "id", "name", "timezone")
    return _add_to_house(request, "site", SiteIn, form)


@page("admin.house.rooms", ADMIN, PAGES + "house.jinja2", request_method="POST")
def page_create_room(request):
    form = {
        **_texts(request, *ROOM_FORM),
        "adjacent": form_texts(request.POST, "adjacent"),
    }
    return _add_to_house(request, "room", RoomIn, form)


def _add_to_house(request, kind: str, model, form: dict):
    """The house page's forms to add a site or a room."""
    create = getattr(registry(request), f"create_{kind}")

    def refused(errors):
        return house_page(request, errors={kind: errors}, **{f"{kind}_form": form})

    return _add(request, kind, create, model, form, refused, "admin.house")


@page("admin.house.import", ADMIN, PAGES + "house.jinja2", request_method="POST")
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
        return house_page(
            request, import_kind=kind, errors={"import": _import_errors(request, exc)}
        )
    request.session.flash(
        f"Imported {kind}: {result.created} created, {result.updated} "
        f"updated, {result.unchanged} unchanged."
    )
    return _back(request, "admin.house")


# -- one site --


@page("admin.house.site", ADMIN, PAGES + "site.jinja2")
def site_page(request, site: Site | None = None, **values) -> dict:
    """The site's page; again, with ``values``, for its refused form."""
    site = site or _row(request, Site)
    return _page(
        request,
        site=site,
        rooms=registry(request).rooms(site.id),
        timezones=timezones(),
        **values,
    )


@page("admin.house.site", ADMIN, PAGES + "site.jinja2", request_method="POST")
def page_change_site(request):
    site = _row(request, Site)
    values = _texts(request, "name", "timezone")
    service = registry(request)
    try:
        if request.POST.get("change") == "delete":
            return _deleted(request, "site", site, service.delete_site, "admin.house")
        changes = service.update_site(site, _form(SiteChange, **values))
    except ServiceError as exc:
        return site_page(request, site, errors=_form_errors(request, exc))
    saved = f"Saved site {site.id}."
    return _saved(request, saved, changes, "admin.house.site", site_id=site.id)


# -- one room --


@page("admin.house.room", ADMIN, PAGES + "room.jinja2")
def room_page(request, room: Room | None = None, form=None, **values) -> dict:
    """The room's page; again, with ``form`` and ``values``, for its
    refused form."""
    room = room or _row(request, Room)
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


@page("admin.house.room", ADMIN, PAGES + "room.jinja2", request_method="POST")
def page_change_room(request):
    room = _row(request, Room)
    service = registry(request)
    if request.POST.get("change") == "max_stay":
        return _change_max_stay(request, room)
    form = _texts(request, *ROOM_FORM[1:])
    form["adjacent"] = form_texts(request.POST, "adjacent")
    try:
        if request.POST.get("change") == "delete":
            return _deleted(request, "room", room, service.delete_room, "admin.house")
        changes = service.update_room(room, _form(RoomChange, **form))
    except ServiceError as exc:
        errors = _form_errors(request, exc)
        return room_page(request, room, form=form, errors=errors)
    saved = f"Saved room {room.id}."
    return _saved(request, saved, changes, "admin.house.room", room_id=room.id)


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
        return house_page(
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


@page("admin.house.beacons", ADMIN, PAGES + "beacons.jinja2")
def beacons_page(request, **values) -> dict:
    """The beacons page; again, with ``values``, for a refused form."""
    service = registry(request)
    values.setdefault("form", {"id": "", "room": "", "label": ""})
    return _page(request, beacons=service.beacons(), rooms=service.rooms(), **values)


@page("admin.house.beacons", ADMIN, PAGES + "beacons.jinja2", request_method="POST")
def page_create_beacon(request):
    form = _texts(request, "id", "room", "label")

    def refused(errors):
        return beacons_page(request, form=form, errors=errors)

    create = registry(request).create_beacon
    return _add(request, "beacon", create, BeaconIn, form, refused, BEACONS_ROUTE)


@page("admin.house.beacon", ADMIN, PAGES + "beacon.jinja2")
def beacon_page(request, beacon: Beacon | None = None, **values) -> dict:
    """The beacon's page; again, with ``values``, for its refused form."""
    beacon = beacon or _row(request, Beacon)
    return _page(request, beacon=beacon, rooms=registry(request).rooms(), **values)


def _next(request, default: str, **kw):
    # Only our own pages: the unplaced list sends its forms back to itself.
    if request.POST.get("next") == "unplaced":
        return _back(request, "admin.house.unplaced")
    return _back(request, default, **kw)


@page("admin.house.beacon", ADMIN, PAGES + "beacon.jinja2", request_method="POST")
def page_change_beacon(request):
    beacon = _row(request, Beacon)
    service = registry(request)
    values = {"room": form_text(request.POST, "room")}
    if "label" in request.POST:
        values["label"] = form_text(request.POST, "label")
    try:
        if request.POST.get("change") == "delete":
            delete = service.delete_beacon
            return _deleted(request, "beacon", beacon, delete, BEACONS_ROUTE)
        changes = service.update_beacon(beacon, _form(BeaconChange, **values))
    except ServiceError as exc:
        if request.POST.get("next") == "unplaced":
            return _unplaced_refused(request, exc, beacon=beacon.id)
        return beacon_page(request, beacon, errors=_form_errors(request, exc))
    where = f"in {beacon.room_id}" if beacon.room_id else "unplaced"
    request.session.flash(
        f"Saved beacon {beacon.id} ({where})." if changes else "Nothing to change."
    )
    return _next(request, "admin.house.beacon", beacon_id=beacon.id)


# -- gateways and badges --


@page("admin.house.devices", ADMIN, PAGES + "devices.jinja2")
def devices_page(request):
    service = registry(request)
    zones = {site.id: site.timezone for site in service.sites()}
    return _page(
        request, gateways=service.gateways(), badges=service.badges(), zones=zones
    )


def _device_page(request, kind: str, device_id: str, **values) -> dict:
    service = registry(request)
    # An id that is no identifier is not looked up: the refused form comes
    # back with the service's reason.
    row = service.find(Gateway if kind == "gateway" else Badge, device_id)
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


@page("admin.house.gateway", ADMIN, PAGES + "device.jinja2")
def gateway_page(request):
    return _device_page(request, "gateway", _device_id(request, "gateway"))


@page("admin.house.badge", ADMIN, PAGES + "device.jinja2")
def badge_page(request):
    return _device_page(request, "badge", _device_id(request, "badge"))


@page("admin.house.gateway", ADMIN, PAGES + "device.jinja2", request_method="POST")
def page_save_gateway(request):
    return _save_device(
        request, "gateway", GatewayChange, _device_form(request, "name")
    )


@page("admin.house.badge", ADMIN, PAGES + "device.jinja2", request_method="POST")
def page_save_badge(request):
    values = _device_form(request, "wearer")
    if "active" in request.POST:
        values["active"] = request.POST["active"] == "true"
    return _save_device(request, "badge", BadgeChange, values)


def _device_form(request, *fields: str) -> dict:
    """A device form's site, and its other ``fields`` when posted (the
    unplaced list's forms have the site alone)."""
    values = {"site": form_text(request.POST, "site")}
    for name in fields:
        if name in request.POST:
            values[name] = form_text(request.POST, name)
    return values


def _save_device(request, kind: str, model, values: dict):
    """Save a gateway's or a badge's form, from its page or the unplaced
    list; refused, the form comes back where it was."""
    device_id = request.matchdict[f"{kind}_id"]
    save = getattr(registry(request), f"save_{kind}")
    try:
        row, created, changes = save(device_id, _form(model, **values))
    except ServiceError as exc:
        if request.POST.get("next") == "unplaced":
            return _unplaced_refused(request, exc, **{kind: device_id})
        errors = _form_errors(request, exc)
        return _device_page(request, kind, device_id, errors=errors)
    saved = created or changes
    request.session.flash(f"Saved {kind} {row.id}." if saved else "Nothing to change.")
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


@page("admin.house.unplaced", ADMIN, PAGES + "unplaced.jinja2")
def unplaced_page(request):
    return _unplaced_page(request)
