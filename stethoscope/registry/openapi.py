"""OpenAPI paths and schemas of the registry's JSON API (see
stethoscope.apidocs.openapi.FEATURE_DOCUMENTS)."""

from typing import Any

from ..apidocs.legacy import (
    FORBIDDEN,
    IDENTIFIER,
    STAFF,
    TIMESTAMP,
    UNAUTHORIZED,
    ref,
    response,
)
from .services import FLOOR_MAX, FLOOR_MIN, NAME_MAX
from .views import MAX_BODY_BYTES, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS

_NAME = {"type": "string", "minLength": 1, "maxLength": NAME_MAX}
_OPTIONAL_NAME = {"type": ["string", "null"], "maxLength": NAME_MAX}
_OPTIONAL_ID = {"type": ["string", "null"], "maxLength": 64}
_FLOOR = {"type": ["integer", "null"], "minimum": FLOOR_MIN, "maximum": FLOOR_MAX}
_UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}
_INVALID = {"$ref": "#/components/responses/Invalid"}
_ERROR = {"$ref": "#/components/responses/Error"}
_NOT_FOUND = response("No such id.", "Error")
_CONFLICT = response("The id exists already, or the row is in use.", "Error")
_TOO_LARGE = {"$ref": "#/components/responses/TooLarge"}
_MEDIA = {"$ref": "#/components/responses/UnsupportedMediaType"}

ADMIN_NOTE = " Needs an admin."
VIEW_NOTE = " Any logged-in role."


def _errors(*extra: str, write: bool = False) -> dict:
    out: dict[str, Any] = {"401": UNAUTHORIZED, "403": FORBIDDEN}
    if write:
        out["400"] = _INVALID
        out["413"] = _TOO_LARGE
        out["415"] = _MEDIA
    for code in extra:
        out[code] = {"404": _NOT_FOUND, "409": _CONFLICT}[code]
    out["503"] = _UNAVAILABLE
    out["default"] = _ERROR
    return out


def _op(op_id, summary, *, ok, body=None, params=(), errors=None, admin=False):
    operation = {
        "operationId": op_id,
        "summary": summary,
        "description": summary + (ADMIN_NOTE if admin else VIEW_NOTE),
        "tags": ["registry"],
        "security": STAFF,
        "responses": {**ok, **(errors or _errors())},
    }
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    return operation


def _path_id(name: str, what: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id (may contain '/').",
        "schema": IDENTIFIER,
    }


_SITE_FILTER = {
    "name": "site",
    "in": "query",
    "description": "Only this site's.",
    "schema": IDENTIFIER,
}
_FORMAT = {
    "name": "format",
    "in": "query",
    "schema": {"enum": ["json", "csv"], "default": "json"},
}
_DELETED = {"204": {"description": "Deleted."}}


def _bulk(kind: str, columns: str) -> dict:
    title = kind.capitalize()
    return {
        f"/{kind}/export": {
            "get": {
                **_op(
                    f"export{title}",
                    f"{title} as a CSV or JSON file that import takes back",
                    ok={
                        "200": {
                            "description": f"CSV columns {columns}; or JSON "
                            f'{{"{kind}": [...]}}.',
                            "content": {
                                "text/csv": {"schema": {"type": "string"}},
                                "application/json": {"schema": ref(f"{title}Export")},
                            },
                        }
                    },
                    params=[_FORMAT, _SITE_FILTER],
                    errors={"400": _INVALID, **_errors()},
                ),
            }
        },
        f"/{kind}/import": {
            "post": {
                **_op(
                    f"import{title}",
                    f"Create or update {kind} from a CSV or JSON file, all or "
                    "nothing; importing the same file again changes nothing",
                    ok={"200": response("What the import did.", "ImportResult")},
                    errors=_errors(write=True),
                    admin=True,
                ),
                "requestBody": {
                    "required": True,
                    "description": f"At most {MAX_IMPORT_BYTES} bytes and "
                    f"{MAX_IMPORT_ROWS} rows. CSV: a header row with {columns}. "
                    "JSON: a list of objects, or the export's object. A 400 "
                    "lists every error with its line (CSV; the header is "
                    "line 1) or index (JSON, from 0) and field.",
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"type": "array", "items": ref(f"{title[:-1]}In")},
                                    ref(f"{title}Export"),
                                ]
                            }
                        },
                    },
                },
            }
        },
    }


def paths(settings) -> dict[str, Any]:
    """The registry's path items; a path's id parameter is repeated in each
    operation (every key of a path item is then a method)."""
    items = _paths()
    for item in items.values():
        shared = item.pop("parameters", [])
        for operation in item.values():
            operation["parameters"] = shared + operation.get("parameters", [])
            if not operation["parameters"]:
                del operation["parameters"]
    return items


def _paths() -> dict[str, Any]:
    write = _errors(write=True)
    return {
        "/sites": {
            "get": _op(
                "listSites",
                "Every site",
                ok={"200": response("The sites.", "SiteList")},
            ),
            "post": _op(
                "createSite",
                "Add a site",
                ok={"201": response("The new site.", "Site")},
                body="SiteIn",
                errors={**write, "409": _CONFLICT},
                admin=True,
            ),
        },
        "/sites/{site_id}": {
            "parameters": [_path_id("site_id", "site")],
            "get": _op(
                "getSite",
                "One site",
                ok={"200": response("The site.", "Site")},
                errors=_errors("404"),
            ),
            "put": _op(
                "updateSite",
                "Change a site's name or timezone (fields left out are kept)",
                ok={"200": response("The site.", "Site")},
                body="SiteUpdate",
                errors={**write, "404": _NOT_FOUND},
                admin=True,
            ),
            "delete": _op(
                "deleteSite",
                "Delete a site with no rooms, gateways or badges",
                ok=_DELETED,
                errors=_errors("404", "409"),
                admin=True,
            ),
        },
        "/rooms": {
            "get": _op(
                "listRooms",
                "Rooms, by site and id",
                ok={"200": response("The rooms.", "RoomList")},
                params=[_SITE_FILTER],
                errors={"400": _INVALID, **_errors()},
            ),
            "post": _op(
                "createRoom",
                "Add a room; adjacent rooms must be of the same site",
                ok={"201": response("The new room.", "Room")},
                body="RoomIn",
                errors={**write, "409": _CONFLICT},
                admin=True,
            ),
        },
        "/rooms/{room_id}": {
            "parameters": [_path_id("room_id", "room")],
            "get": _op(
                "getRoom",
                "One room",
                ok={"200": response("The room.", "Room")},
                errors=_errors("404"),
            ),
            "put": _op(
                "updateRoom",
                "Change a room (fields left out are kept; adjacent replaces "
                "the set, both ways round)",
                ok={"200": response("The room.", "Room")},
                body="RoomUpdate",
                errors={**write, "404": _NOT_FOUND},
                admin=True,
            ),
            "delete": _op(
                "deleteRoom",
                "Delete a room no training run refers to; its beacons become unplaced",
                ok=_DELETED,
                errors=_errors("404", "409"),
                admin=True,
            ),
        },
        "/beacons": {
            "get": _op(
                "listBeacons",
                "Beacons by id",
                ok={"200": response("The beacons.", "BeaconList")},
                params=[_SITE_FILTER],
                errors={"400": _INVALID, **_errors()},
            ),
            "post": _op(
                "createBeacon",
                "Describe a beacon",
                ok={"201": response("The new beacon.", "Beacon")},
                body="BeaconIn",
                errors={**write, "409": _CONFLICT},
                admin=True,
            ),
        },
        "/beacons/{beacon_id}": {
            "parameters": [_path_id("beacon_id", "beacon")],
            "get": _op(
                "getBeacon",
                "One beacon",
                ok={"200": response("The beacon.", "Beacon")},
                errors=_errors("404"),
            ),
            "put": _op(
                "updateBeacon",
                "Place a beacon in a room (null: unplaced) or relabel it",
                ok={"200": response("The beacon.", "Beacon")},
                body="BeaconUpdate",
                errors={**write, "404": _NOT_FOUND},
                admin=True,
            ),
            "delete": _op(
                "deleteBeacon",
                "Forget a beacon (heard again, it comes back unplaced)",
                ok=_DELETED,
                errors=_errors("404"),
                admin=True,
            ),
        },
        **_bulk("rooms", "id,name,site,floor,adjacent (ids separated by ';')"),
        **_bulk("beacons", "id,room,label"),
        "/registry/gateways": {
            "get": _op(
                "listRegistryGateways",
                "Every gateway row: as described and as seen",
                ok={"200": response("The gateways.", "RegistryGatewayList")},
            ),
        },
        "/registry/gateways/{gateway_id}": {
            "parameters": [_path_id("gateway_id", "gateway")],
            "get": _op(
                "getRegistryGateway",
                "One gateway",
                ok={"200": response("The gateway.", "RegistryGateway")},
                errors=_errors("404"),
            ),
            "put": _op(
                "saveRegistryGateway",
                "Name and place a gateway; one never heard is created (201)",
                ok={
                    "200": response("The gateway.", "RegistryGateway"),
                    "201": response("The gateway, new.", "RegistryGateway"),
                },
                body="GatewayIn",
                errors=write,
                admin=True,
            ),
        },
        "/registry/badges": {
            "get": _op(
                "listRegistryBadges",
                "Every badge row with its wearer",
                ok={"200": response("The badges.", "RegistryBadgeList")},
                admin=True,
            ),
        },
        "/registry/badges/{badge_id}": {
            "parameters": [_path_id("badge_id", "badge")],
            "get": _op(
                "getRegistryBadge",
                "One badge with its wearer",
                ok={"200": response("The badge.", "RegistryBadge")},
                errors=_errors("404"),
                admin=True,
            ),
            "put": _op(
                "saveRegistryBadge",
                "Say who wears a badge, at which site, and whether it is in "
                "use; one never heard is created (201)",
                ok={
                    "200": response("The badge.", "RegistryBadge"),
                    "201": response("The badge, new.", "RegistryBadge"),
                },
                body="BadgeIn",
                errors=write,
                admin=True,
            ),
        },
        "/registry/unplaced": {
            "get": _op(
                "listUnplaced",
                "Beacons heard in no room and badges seen at no site",
                ok={"200": response("What to place.", "Unplaced")},
                admin=True,
            ),
        },
    }


def _object(properties: dict, required=(), description=None) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def _list(key: str, item: str) -> dict:
    return _object({key: {"type": "array", "items": ref(item)}}, [key])


def schemas(settings) -> dict[str, Any]:
    timezone = {"type": "string", "description": "IANA name, e.g. Europe/London."}
    adjacent = {"type": "array", "items": IDENTIFIER}
    optional_time = {**TIMESTAMP, "type": ["string", "null"]}
    site = {
        "id": IDENTIFIER,
        "name": _NAME,
        "timezone": timezone,
    }
    room_in = {
        "id": IDENTIFIER,
        "name": _NAME,
        "site": IDENTIFIER,
        "floor": _FLOOR,
        "adjacent": {
            **adjacent,
            "description": "Rooms of the same site; also accepted as ids "
            "separated by ';'.",
        },
    }
    beacon_in = {"id": IDENTIFIER, "room": _OPTIONAL_ID, "label": _OPTIONAL_NAME}
    seen = {
        "first_seen": optional_time,
        "last_seen": optional_time,
    }
    return {
        "SiteIn": _object(site, ["id", "name", "timezone"]),
        "SiteUpdate": _object({"name": _NAME, "timezone": timezone}),
        "Site": _object(
            {**site, "created_at": TIMESTAMP}, ["id", "name", "timezone", "created_at"]
        ),
        "SiteList": _list("sites", "Site"),
        "RoomIn": _object(room_in, ["id", "name", "site"]),
        "RoomUpdate": _object(
            {k: v for k, v in room_in.items() if k != "id"},
            description="Fields left out keep their values; floor null clears it.",
        ),
        "Room": _object(
            {**room_in, "adjacent": adjacent},
            ["id", "name", "site", "floor", "adjacent"],
        ),
        "RoomList": _list("rooms", "Room"),
        "RoomsExport": _list("rooms", "RoomIn"),
        "BeaconIn": _object(beacon_in, ["id"]),
        "BeaconUpdate": _object(
            {"room": _OPTIONAL_ID, "label": _OPTIONAL_NAME},
            description="Fields left out keep their values; room null unplaces.",
        ),
        "Beacon": _object(
            {
                **beacon_in,
                "first_heard": optional_time,
                "last_heard": optional_time,
            },
            ["id", "room", "label", "first_heard", "last_heard"],
        ),
        "BeaconList": _list("beacons", "Beacon"),
        "BeaconsExport": _list("beacons", "BeaconIn"),
        "GatewayIn": _object(
            {"name": _OPTIONAL_NAME, "site": _OPTIONAL_ID},
            description="Fields left out keep their values.",
        ),
        "RegistryGateway": _object(
            {
                "id": IDENTIFIER,
                "name": _OPTIONAL_NAME,
                "site": _OPTIONAL_ID,
                **seen,
                "last_ip": {"type": ["string", "null"]},
                "posts": {"type": "integer", "minimum": 0},
                "duplicates": {"type": "integer", "minimum": 0},
            },
            ["id", "name", "site", "first_seen", "last_seen", "posts"],
        ),
        "RegistryGatewayList": _list("gateways", "RegistryGateway"),
        "BadgeIn": _object(
            {
                "wearer": {
                    **_OPTIONAL_NAME,
                    "description": "Who wears it, as staff know them. "
                    "Personal information: never logged.",
                },
                "site": _OPTIONAL_ID,
                "active": {"type": "boolean"},
            },
            description="Fields left out keep their values.",
        ),
        "RegistryBadge": _object(
            {
                "id": IDENTIFIER,
                "wearer": _OPTIONAL_NAME,
                "site": _OPTIONAL_ID,
                "active": {"type": "boolean"},
                **seen,
                "last_gateway_id": _OPTIONAL_ID,
            },
            ["id", "wearer", "site", "active", "first_seen", "last_seen"],
        ),
        "RegistryBadgeList": _list("badges", "RegistryBadge"),
        "Unplaced": _object(
            {
                "beacons": {"type": "array", "items": ref("Beacon")},
                "badges": {
                    "type": "array",
                    "items": _object(
                        {"id": IDENTIFIER, **seen, "last_gateway_id": _OPTIONAL_ID},
                        ["id", "first_seen", "last_seen"],
                    ),
                },
            },
            ["beacons", "badges"],
        ),
        "ImportResult": _object(
            {
                "created": {"type": "integer", "minimum": 0},
                "updated": {"type": "integer", "minimum": 0},
                "unchanged": {"type": "integer", "minimum": 0},
                "created_ids": adjacent,
                "updated_ids": adjacent,
            },
            ["created", "updated", "unchanged", "created_ids", "updated_ids"],
        ),
        "_RegistryBodyLimit": {
            "description": f"JSON bodies of single objects: at most "
            f"{MAX_BODY_BYTES} bytes.",
            "type": "object",
        },
    }
