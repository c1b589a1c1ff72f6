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
"""

from pyramid.response import Response

from ..endpoints import endpoint
from ..errors import TooLarge
from ..permissions import ADMIN, VIEW
from . import transfer
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

TAGS = ("registry",)
IN_USE = "The id exists already."


def registry(request) -> RegistryService:
    return request.find_service(RegistryService)


def deleted(request) -> Response:
    return Response(status=204)


# ---- gateways and badges as seen (traffic) -----------------------------------


@endpoint(
    route_name="registry.gateways",
    request_method="GET",
    permission=VIEW,
    summary="Every gateway that has posted, most recently seen first",
    response=SeenGatewayList,
    tags=TAGS,
)
def list_gateways(request):
    gateways = request.find_service(SeenService).gateways()
    return SeenGatewayList.model_validate({"gateways": gateways})


@endpoint(
    route_name="registry.badges",
    request_method="GET",
    permission=VIEW,
    summary="Every badge that has been heard, most recently seen first",
    response=SeenBadgeList,
    tags=TAGS,
)
def list_badges(request):
    badges = request.find_service(SeenService).badges()
    return SeenBadgeList.model_validate({"badges": badges})


# ---- sites -------------------------------------------------------------------


@endpoint(
    route_name="registry.sites",
    request_method="GET",
    permission=VIEW,
    summary="Every site",
    response=SiteList,
    tags=TAGS,
)
def list_sites(request):
    return SiteList(sites=[Site.of(site) for site in registry(request).sites()])


@endpoint(
    route_name="registry.sites",
    request_method="POST",
    permission=ADMIN,
    summary="Add a site",
    body=SiteIn,
    response=Site,
    status=201,
    errors={409: IN_USE},
    tags=TAGS,
)
def create_site(request):
    return Site.of(registry(request).create_site(request.validated.body))


@endpoint(
    route_name="registry.site",
    request_method="GET",
    permission=VIEW,
    summary="One site",
    path=SitePath,
    response=Site,
    tags=TAGS,
)
def get_site(request):
    return Site.of(registry(request).get_site(request.validated.path.site_id))


@endpoint(
    route_name="registry.site",
    request_method="PUT",
    permission=ADMIN,
    summary="Change a site's name or timezone (fields left out are kept)",
    path=SitePath,
    body=SiteChange,
    response=Site,
    tags=TAGS,
)
def update_site(request):
    service = registry(request)
    site = service.get_site(request.validated.path.site_id)
    service.update_site(site, request.validated.body)
    return Site.of(site)


@endpoint(
    route_name="registry.site",
    request_method="DELETE",
    permission=ADMIN,
    summary="Delete a site with no rooms, gateways or badges",
    path=SitePath,
    status=204,
    errors={409: "The site still has rooms, gateways or badges."},
    tags=TAGS,
)
def delete_site(request):
    service = registry(request)
    service.delete_site(service.get_site(request.validated.path.site_id))
    return deleted(request)


# ---- rooms -------------------------------------------------------------------


@endpoint(
    route_name="registry.rooms",
    request_method="GET",
    permission=VIEW,
    summary="Rooms, by site and id",
    query=SiteFilter,
    response=RoomList,
    tags=TAGS,
)
def list_rooms(request):
    service = registry(request)
    site = service.check_site_filter(request.validated.query.site)
    return RoomList(rooms=[Room.of(room) for room in service.rooms(site)])


@endpoint(
    route_name="registry.rooms",
    request_method="POST",
    permission=ADMIN,
    summary="Add a room; adjacent rooms must be of the same site",
    body=RoomIn,
    response=Room,
    status=201,
    errors={409: IN_USE},
    tags=TAGS,
)
def create_room(request):
    return Room.of(registry(request).create_room(request.validated.body))


@endpoint(
    route_name="registry.room",
    request_method="GET",
    permission=VIEW,
    summary="One room",
    path=RoomPath,
    response=Room,
    tags=TAGS,
)
def get_room(request):
    return Room.of(registry(request).get_room(request.validated.path.room_id))


@endpoint(
    route_name="registry.room",
    request_method="PUT",
    permission=ADMIN,
    summary="Change a room (fields left out are kept; adjacent replaces the "
    "set, both ways round)",
    path=RoomPath,
    body=RoomChange,
    response=Room,
    tags=TAGS,
)
def update_room(request):
    service = registry(request)
    room = service.get_room(request.validated.path.room_id)
    service.update_room(room, request.validated.body)
    return Room.of(room)


@endpoint(
    route_name="registry.room",
    request_method="DELETE",
    permission=ADMIN,
    summary="Delete a room no training run refers to; its beacons become unplaced",
    path=RoomPath,
    status=204,
    errors={409: "A training run's label is this room."},
    tags=TAGS,
)
def delete_room(request):
    service = registry(request)
    service.delete_room(service.get_room(request.validated.path.room_id))
    return deleted(request)


# ---- beacons -----------------------------------------------------------------


@endpoint(
    route_name="registry.beacons",
    request_method="GET",
    permission=VIEW,
    summary="Beacons by id",
    query=SiteFilter,
    response=BeaconList,
    tags=TAGS,
)
def list_beacons(request):
    service = registry(request)
    site = service.check_site_filter(request.validated.query.site)
    return BeaconList(beacons=[Beacon.of(beacon) for beacon in service.beacons(site)])


@endpoint(
    route_name="registry.beacons",
    request_method="POST",
    permission=ADMIN,
    summary="Describe a beacon",
    body=BeaconIn,
    response=Beacon,
    status=201,
    errors={409: IN_USE},
    tags=TAGS,
)
def create_beacon(request):
    return Beacon.of(registry(request).create_beacon(request.validated.body))


@endpoint(
    route_name="registry.beacon",
    request_method="GET",
    permission=VIEW,
    summary="One beacon",
    path=BeaconPath,
    response=Beacon,
    tags=TAGS,
)
def get_beacon(request):
    return Beacon.of(registry(request).get_beacon(request.validated.path.beacon_id))


@endpoint(
    route_name="registry.beacon",
    request_method="PUT",
    permission=ADMIN,
    summary="Place a beacon in a room (null: unplaced) or relabel it",
    path=BeaconPath,
    body=BeaconChange,
    response=Beacon,
    tags=TAGS,
)
def update_beacon(request):
    service = registry(request)
    beacon = service.get_beacon(request.validated.path.beacon_id)
    service.update_beacon(beacon, request.validated.body)
    return Beacon.of(beacon)


@endpoint(
    route_name="registry.beacon",
    request_method="DELETE",
    permission=ADMIN,
    summary="Forget a beacon (heard again, it comes back unplaced)",
    path=BeaconPath,
    status=204,
    tags=TAGS,
)
def delete_beacon(request):
    service = registry(request)
    service.delete_beacon(service.get_beacon(request.validated.path.beacon_id))
    return deleted(request)


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


def _import_documented(columns: str, row: str, export: str):
    """The import takes a CSV or a JSON file, read by the view itself."""

    def amend(operation, settings):
        rows = {"type": "array", "items": {"$ref": f"#/components/schemas/{row}"}}
        whole = {"$ref": f"#/components/schemas/{export}"}
        operation["requestBody"] = {
            "required": True,
            "description": f"At most {MAX_IMPORT_BYTES} bytes and "
            f"{MAX_IMPORT_ROWS} rows. CSV: a header row with {columns}. JSON: "
            "a list of objects, or the export's object. A 400 lists every "
            "error, its field prefixed with the line (CSV, the header being "
            "line 1: line 3.room) or the index (JSON, from 0: 2.room).",
            "content": {
                **CSV,
                "application/json": {"schema": {"oneOf": [rows, whole]}},
            },
        }

    return amend


def _export(request, kind: str):
    query = request.validated.query
    export = transfer.exported(registry(request), kind, query.site)
    if query.format == "csv":
        return transfer.csv_response(kind, export)
    request.response.content_disposition = f'attachment; filename="{kind}.json"'
    return export


def _import(request, kind: str) -> ImportResult:
    if (request.content_length or 0) > MAX_IMPORT_BYTES:
        raise TooLarge(f"the body may be at most {MAX_IMPORT_BYTES} bytes")
    body = request.body
    if len(body) > MAX_IMPORT_BYTES:
        raise TooLarge(f"the body may be at most {MAX_IMPORT_BYTES} bytes")
    return transfer.import_file(
        registry(request), kind, request.content_type or "", body
    )


@endpoint(
    route_name="registry.rooms.export",
    request_method="GET",
    permission=VIEW,
    summary="Rooms as a CSV or JSON file that import takes back",
    query=ExportQuery,
    response=RoomsExport,
    amend=_export_documented(ROOM_COLUMNS_TEXT),
    tags=TAGS,
)
def export_rooms(request):
    return _export(request, "rooms")


@endpoint(
    route_name="registry.rooms.import",
    request_method="POST",
    permission=ADMIN,
    summary="Create or update rooms from a CSV or JSON file, all or nothing; "
    "importing the same file again changes nothing",
    response=ImportResult,
    errors=IMPORT_ERRORS,
    amend=_import_documented(ROOM_COLUMNS_TEXT, "RoomIn", "RoomsExport"),
    tags=TAGS,
)
def import_rooms(request):
    return _import(request, "rooms")


@endpoint(
    route_name="registry.beacons.export",
    request_method="GET",
    permission=VIEW,
    summary="Beacons as a CSV or JSON file that import takes back",
    query=ExportQuery,
    response=BeaconsExport,
    amend=_export_documented(BEACON_COLUMNS_TEXT),
    tags=TAGS,
)
def export_beacons(request):
    return _export(request, "beacons")


@endpoint(
    route_name="registry.beacons.import",
    request_method="POST",
    permission=ADMIN,
    summary="Create or update beacons from a CSV or JSON file, all or nothing; "
    "importing the same file again changes nothing",
    response=ImportResult,
    errors=IMPORT_ERRORS,
    amend=_import_documented(BEACON_COLUMNS_TEXT, "BeaconIn", "BeaconsExport"),
    tags=TAGS,
)
def import_beacons(request):
    return _import(request, "beacons")


# ---- gateways and badges as described ----------------------------------------


@endpoint(
    route_name="registry.gateway_list",
    request_method="GET",
    permission=VIEW,
    summary="Every gateway row: as described and as seen",
    response=RegistryGatewayList,
    operation_id="listRegistryGateways",
    tags=TAGS,
)
def list_registry_gateways(request):
    return RegistryGatewayList(
        gateways=[RegistryGateway.of(g) for g in registry(request).gateways()]
    )


@endpoint(
    route_name="registry.gateway",
    request_method="GET",
    permission=VIEW,
    summary="One gateway",
    path=GatewayPath,
    response=RegistryGateway,
    operation_id="getRegistryGateway",
    tags=TAGS,
)
def get_gateway(request):
    service = registry(request)
    return RegistryGateway.of(service.get_gateway(request.validated.path.gateway_id))


@endpoint(
    route_name="registry.gateway",
    request_method="PUT",
    permission=ADMIN,
    summary="Name and place a gateway; one never heard is created (201)",
    path=NewGatewayPath,
    body=GatewayChange,
    responses={200: RegistryGateway, 201: RegistryGateway},
    operation_id="saveRegistryGateway",
    tags=TAGS,
)
def save_gateway(request):
    gateway, created, _ = registry(request).save_gateway(
        request.validated.path.gateway_id, request.validated.body
    )
    request.response.status = 201 if created else 200
    return RegistryGateway.of(gateway)


@endpoint(
    route_name="registry.badge_list",
    request_method="GET",
    permission=ADMIN,
    summary="Every badge row with its wearer",
    response=RegistryBadgeList,
    operation_id="listRegistryBadges",
    tags=TAGS,
)
def list_registry_badges(request):
    return RegistryBadgeList(
        badges=[RegistryBadge.of(b) for b in registry(request).badges()]
    )


@endpoint(
    route_name="registry.badge",
    request_method="GET",
    permission=ADMIN,
    summary="One badge with its wearer",
    path=BadgePath,
    response=RegistryBadge,
    operation_id="getRegistryBadge",
    tags=TAGS,
)
def get_badge(request):
    service = registry(request)
    return RegistryBadge.of(service.get_badge(request.validated.path.badge_id))


@endpoint(
    route_name="registry.badge",
    request_method="PUT",
    permission=ADMIN,
    summary="Say who wears a badge, at which site, and whether it is in use; "
    "one never heard is created (201)",
    path=NewBadgePath,
    body=BadgeChange,
    responses={200: RegistryBadge, 201: RegistryBadge},
    operation_id="saveRegistryBadge",
    tags=TAGS,
)
def save_badge(request):
    badge, created, _ = registry(request).save_badge(
        request.validated.path.badge_id, request.validated.body
    )
    request.response.status = 201 if created else 200
    return RegistryBadge.of(badge)


@endpoint(
    route_name="registry.unplaced",
    request_method="GET",
    permission=ADMIN,
    summary="Beacons heard in no room and badges seen at no site",
    response=Unplaced,
    operation_id="listUnplaced",
    tags=TAGS,
)
def list_unplaced(request):
    unplaced = registry(request).unplaced()
    return Unplaced(
        beacons=[Beacon.of(beacon) for beacon in unplaced["beacons"]],
        badges=[
            UnplacedBadge(
                id=badge.id,
                first_seen=badge.first_seen,
                last_seen=badge.last_seen,
                last_gateway_id=badge.last_gateway_id,
            )
            for badge in unplaced["badges"]
        ],
    )
