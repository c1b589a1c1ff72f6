"""The registry's JSON API (the admin pages are in stethoscope.registry.pages).

Reads of sites, rooms, beacons and gateways need VIEW: they name places
and devices, not people, and the dashboard needs them. Badges with their
wearers, the unplaced list and every change need ADMIN: a wearer's name
next to a badge id is what turns "badge 17 is in the lounge" into where a
person is. RegistryService audit-logs every change; a wearer's name never
goes into the log ("wearer": "changed").

Import and export live beside the collections, not under them
(``/import/rooms``, ``/export/rooms``): every path below ``/rooms/`` is a
room's, since a room's id may be any printable text, "import" included.

The endpoints of the house's collections are alike but for their models,
summaries and permissions, so their views are written once
(``Collection``, ``_files``) and each endpoint is declared by one line
naming what differs; the OpenAPI operations are generated from those
declarations as from any ``@endpoint``.
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping

from pydantic import BaseModel
from pyramid.response import Response

from ..endpoints import endpoint
from ..errors import TooLarge
from ..permissions import ADMIN, VIEW
from ..schemas import Out
from . import models, transfer
from .schemas import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    BadgeChange,
    BadgePath,
    Beacon,
    BeaconChange,
    BeaconIn,
    BeaconList,
    BeaconPath,
    BeaconsExport,
    BeaconsImport,
    ExportQuery,
    GatewayChange,
    GatewayPath,
    ImportResult,
    NewBadgePath,
    NewGatewayPath,
    RegistryBadge,
    RegistryBadgeList,
    RegistryGateway,
    RegistryGatewayList,
    Room,
    RoomChange,
    RoomIn,
    RoomList,
    RoomPath,
    RoomsExport,
    RoomsImport,
    SeenBadgeList,
    SeenGatewayList,
    Site,
    SiteChange,
    SiteFilter,
    SiteIn,
    SiteList,
    SitePath,
    Unplaced,
    UnplacedBadge,
)
from .services import RegistryService, SeenService

IN_USE = "The id exists already."
# A device's path takes any id (NewGatewayPath): one that no device can
# have is refused as the admin page's form refuses it, 400 naming id.
NEW_DEVICE_INVALID = (
    "The body is invalid, or the id is not 1 to 64 printable characters "
    "without spaces (field id); errors name it."
)
NO_ERRORS: Mapping[int, str] = {}

registry_endpoint = functools.partial(endpoint, tags=("registry",))


def registry(request) -> RegistryService:
    return request.find_service(RegistryService)


def _declare(name: str, view: Callable, **declared) -> Callable:
    """``view`` as the endpoint ``declared``, named ``name``: its operation
    id (``get_site``: getSite), as a view written by hand would be."""
    view.__name__ = view.__qualname__ = name
    return registry_endpoint(**declared)(view)


# ---- gateways and badges as seen (traffic) -----------------------------------


def _seen(plural: str, listing: type[Out], summary: str) -> Callable:
    """GET /gateways or /badges: SeenService's list of them."""

    def view(request):
        rows = getattr(request.find_service(SeenService), plural)()
        return listing.model_validate({plural: rows})

    return _declare(
        f"list_{plural}",
        view,
        route_name=f"registry.{plural}",
        request_method="GET",
        permission=VIEW,
        summary=summary,
        response=listing,
    )


list_gateways = _seen(
    "gateways",
    SeenGatewayList,
    "Every gateway that has posted, most recently seen first",
)
list_badges = _seen(
    "badges", SeenBadgeList, "Every badge that has been heard, most recently seen first"
)


# ---- the house's collections -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Collection:
    """Sites, rooms, beacons, gateways or badges over JSON: each endpoint on
    them is one line below (``get_site = SITES.get("One site")``), its view
    written once here. The views call RegistryService: ``get`` and the
    methods named after the row (``create_site``, ``update_site``,
    ``delete_site``, ``save_gateway``) and its plural (``sites()``, given
    ``?site=`` when ``by_site``)."""

    row: type[models.Base]
    item: type[Out]
    listing: type[Out]
    path: type[BaseModel]
    by_site: bool = False
    # Who may read (list and get); changes are ADMIN's.
    read: str = VIEW
    # The list's route when /{plural} is another's; the views' names' noun.
    list_route: str = ""
    noun: str = ""

    @property
    def one(self) -> str:
        return self.row.__name__.lower()

    def _view(self, verb: str, view: Callable, **declared) -> Callable:
        noun = self.noun or self.one
        name = f"list_{noun}s" if verb == "list" else f"{verb}_{noun}"
        return _declare(name, view, **declared)

    def _method(self, request, verb: str) -> Callable:
        return getattr(registry(request), f"{verb}_{self.one}")

    def _found(self, request):
        key = getattr(request.validated.path, f"{self.one}_id")
        return registry(request).get(self.row, key)

    def list(self, summary: str) -> Callable:
        def view(request):
            service = registry(request)
            rows = getattr(service, f"{self.one}s")
            if self.by_site:
                found = rows(service.check_site_filter(request.validated.query.site))
            else:
                found = rows()
            return self.listing(**{f"{self.one}s": [self.item.of(r) for r in found]})

        return self._view(
            "list",
            view,
            route_name=self.list_route or f"registry.{self.one}s",
            request_method="GET",
            permission=self.read,
            summary=summary,
            query=SiteFilter if self.by_site else None,
            response=self.listing,
        )

    def get(self, summary: str) -> Callable:
        def view(request):
            return self.item.of(self._found(request))

        declared = self._on_one("GET", self.read, summary)
        return self._view("get", view, response=self.item, **declared)

    def create(self, summary: str, body: type[BaseModel]) -> Callable:
        def view(request):
            created = self._method(request, "create")(request.validated.body)
            return self.item.of(created)

        return self._view(
            "create",
            view,
            route_name=f"registry.{self.one}s",
            request_method="POST",
            permission=ADMIN,
            summary=summary,
            body=body,
            response=self.item,
            status=201,
            errors={409: IN_USE},
        )

    def update(self, summary: str, body: type[BaseModel]) -> Callable:
        def view(request):
            row = self._found(request)
            self._method(request, "update")(row, request.validated.body)
            return self.item.of(row)

        declared = self._on_one("PUT", ADMIN, summary)
        return self._view("update", view, body=body, response=self.item, **declared)

    def delete(self, summary: str, errors: Mapping[int, str] = NO_ERRORS) -> Callable:
        def view(request):
            self._method(request, "delete")(self._found(request))
            return Response(status=204)

        declared = self._on_one("DELETE", ADMIN, summary)
        return self._view("delete", view, status=204, errors=errors, **declared)

    def save(self, summary: str, path, body: type[BaseModel]) -> Callable:
        """PUT of a device, heard or not: 201 when this created its row."""

        def view(request):
            key = getattr(request.validated.path, f"{self.one}_id")
            save = self._method(request, "save")
            row, created, _ = save(key, request.validated.body)
            request.response.status = 201 if created else 200
            return self.item.of(row)

        return self._view(
            "save",
            view,
            **{**self._on_one("PUT", ADMIN, summary), "path": path},
            body=body,
            responses={200: self.item, 201: self.item},
            errors={400: NEW_DEVICE_INVALID},
        )

    def _on_one(self, method: str, permission: str, summary: str) -> dict:
        return {
            "route_name": f"registry.{self.one}",
            "request_method": method,
            "permission": permission,
            "summary": summary,
            "path": self.path,
        }


SITES = Collection(models.Site, Site, SiteList, SitePath)
ROOMS = Collection(models.Room, Room, RoomList, RoomPath, by_site=True)
BEACONS = Collection(models.Beacon, Beacon, BeaconList, BeaconPath, by_site=True)
GATEWAYS = Collection(
    models.Gateway,
    RegistryGateway,
    RegistryGatewayList,
    GatewayPath,
    list_route="registry.gateway_list",
    noun="registry_gateway",
)
BADGES = Collection(
    models.Badge,
    RegistryBadge,
    RegistryBadgeList,
    BadgePath,
    read=ADMIN,
    list_route="registry.badge_list",
    noun="registry_badge",
)

# Reads: any staff login, but badges with their wearers (ADMIN).
list_sites = SITES.list("Every site")
get_site = SITES.get("One site")
list_rooms = ROOMS.list("Rooms, by site and id")
get_room = ROOMS.get("One room")
list_beacons = BEACONS.list("Beacons by id")
get_beacon = BEACONS.get("One beacon")
list_registry_gateways = GATEWAYS.list("Every gateway row: as described and as seen")
get_registry_gateway = GATEWAYS.get("One gateway")
list_registry_badges = BADGES.list("Every badge row with its wearer")
get_registry_badge = BADGES.get("One badge with its wearer")

# Changes: ADMIN.
create_site = SITES.create("Add a site", SiteIn)
update_site = SITES.update(
    "Change a site's name or timezone (fields left out are kept)", SiteChange
)
delete_site = SITES.delete(
    "Delete a site with no rooms, gateways or badges",
    {409: "The site still has rooms, gateways or badges."},
)
create_room = ROOMS.create(
    "Add a room; adjacent rooms must be of the same site", RoomIn
)
update_room = ROOMS.update(
    "Change a room (fields left out are kept; adjacent replaces the set, both "
    "ways round)",
    RoomChange,
)
delete_room = ROOMS.delete(
    "Delete a room no training run refers to; its beacons become unplaced",
    {409: "A training run's label is this room."},
)
create_beacon = BEACONS.create("Describe a beacon", BeaconIn)
update_beacon = BEACONS.update(
    "Place a beacon in a room (null: unplaced) or relabel it", BeaconChange
)
delete_beacon = BEACONS.delete("Forget a beacon (heard again, it comes back unplaced)")
save_registry_gateway = GATEWAYS.save(
    "Name and place a gateway; one never heard is created (201)",
    NewGatewayPath,
    GatewayChange,
)
save_registry_badge = BADGES.save(
    "Say who wears a badge, at which site, and whether it is in use; one never "
    "heard is created (201)",
    NewBadgePath,
    BadgeChange,
)


# ---- import and export -------------------------------------------------------


ROOM_COLUMNS_TEXT = (
    "id,name,site,floor,max_stay_minutes,adjacent (ids separated by ';')"
)
BEACON_COLUMNS_TEXT = "id,room,label"
CSV = {"text/csv": {"schema": {"type": "string"}}}
IMPORT_ERRORS = {
    400: "The file, or rows of it, are invalid; nothing was imported.",
    413: "The file is too large.",
    415: "The Content-Type is not text/csv or application/json.",
}


def _export_documented(columns: str):
    """The export gives CSV (format=csv) as well as JSON."""

    def amend(operation, settings):
        ok = operation["responses"]["200"]
        ok["content"].update(CSV)
        ok["description"] += f" CSV (format=csv): columns {columns}."

    return amend


def _import_documented(columns: str):
    """The import takes a CSV file as well as the declared JSON one."""

    def amend(operation, settings):
        body = operation["requestBody"]
        body["description"] = (
            f"At most {MAX_IMPORT_BYTES} bytes and {MAX_IMPORT_ROWS} rows. CSV: "
            f"a header row with {columns}. JSON: a list of objects, or the "
            "export's object. A 400 lists every error, its field prefixed with "
            "the line (CSV, the header being line 1: line 3.room) or the index "
            "(JSON, from 0: 2.room)."
        )
        body["content"] = {**CSV, **body["content"]}

    return amend


def _files(kind: str, export: type[Out], imported: type[BaseModel], columns: str):
    """GET /export/{kind} and POST /import/{kind} (rooms or beacons): the
    file, CSV or JSON, that the import takes back. ``imported`` is the JSON
    file, documented only: the view reads the file itself (transfer), and
    the service checks its rows with the rows' model."""

    def export_view(request):
        query = request.validated.query
        exported = transfer.exported(registry(request), kind, query.site)
        if query.format == "csv":
            return transfer.csv_response(kind, exported)
        request.response.content_disposition = f'attachment; filename="{kind}.json"'
        return exported

    def import_view(request) -> ImportResult:
        if (request.content_length or 0) > MAX_IMPORT_BYTES:
            raise TooLarge(f"the body may be at most {MAX_IMPORT_BYTES} bytes")
        body = request.body
        if len(body) > MAX_IMPORT_BYTES:
            raise TooLarge(f"the body may be at most {MAX_IMPORT_BYTES} bytes")
        content_type = request.content_type or ""
        return transfer.import_file(registry(request), kind, content_type, body)

    return _declare(
        f"export_{kind}",
        export_view,
        route_name=f"registry.{kind}.export",
        request_method="GET",
        permission=VIEW,
        summary=f"{kind.capitalize()} as a CSV or JSON file that import takes back",
        query=ExportQuery,
        response=export,
        amend=_export_documented(columns),
    ), _declare(
        f"import_{kind}",
        import_view,
        route_name=f"registry.{kind}.import",
        request_method="POST",
        permission=ADMIN,
        summary=f"Create or update {kind} from a CSV or JSON file, all or "
        "nothing; importing the same file again changes nothing",
        body=imported,
        parse_body=False,
        response=ImportResult,
        errors=IMPORT_ERRORS,
        amend=_import_documented(columns),
    )


export_rooms, import_rooms = _files(
    "rooms", RoomsExport, RoomsImport, ROOM_COLUMNS_TEXT
)
export_beacons, import_beacons = _files(
    "beacons", BeaconsExport, BeaconsImport, BEACON_COLUMNS_TEXT
)


# ---- unplaced ------------------------------------------------------------------


@registry_endpoint(
    route_name="registry.unplaced",
    request_method="GET",
    permission=ADMIN,
    summary="Beacons heard in no room and badges seen at no site",
    response=Unplaced,
)
def list_unplaced(request):
    unplaced = registry(request).unplaced()
    return Unplaced(
        beacons=[Beacon.of(beacon) for beacon in unplaced["beacons"]],
        badges=[UnplacedBadge.of(badge) for badge in unplaced["badges"]],
    )
