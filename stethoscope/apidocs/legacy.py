"""The OpenAPI 3.1 document of the JSON API, built once at start-up.

The reading a gateway posts is described by the pydantic model that
validates it (stethoscope.ingest.schemas.ReadingIn), so the document cannot
drift from the validation; the limits that come from settings (beacons per
reading, batch size, page size) are filled in from the settings in force.
Responses are plain dicts in the code and are described here by hand; the
functional tests check that every JSON route appears in ``paths``.

Who may call what is stethoscope.security's business; here each operation
says which credentials it takes (``security``) and that it may answer 401
(none, or bad ones) and 403 (valid ones that do not allow this).
"""

import copy
import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..ingest.schemas import ReadingIn

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _response(description: str, schema: str, **extra) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
        **extra,
    }


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": 'Bearer realm="stethoscope"',
        "schema": {"type": "string"},
    }
}
_TIMESTAMP = {"type": "string", "format": "date-time"}
_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 64}


def _reading_in_schemas(max_beacons: int) -> dict[str, Any]:
    schema = ReadingIn.model_json_schema(ref_template=REF)
    schemas = schema.pop("$defs", {})
    # The cap is a setting, given to the validator as context, so pydantic
    # cannot put it in the schema.
    schema["properties"]["beacons"]["maxProperties"] = max_beacons
    schemas["ReadingIn"] = schema
    schemas["BatchItemIn"] = {
        "description": "One reading of a batch: as ReadingIn, with observed_at.",
        "allOf": [
            _ref("ReadingIn"),
            {"required": ["observed_at"], "properties": {"observed_at": _TIMESTAMP}},
        ],
    }
    return schemas


def _output_schemas(settings) -> dict[str, Any]:
    return {
        "Reading": {
            "description": "A stored reading.",
            "type": "object",
            "required": [
                "id",
                "badge_id",
                "pi_id",
                "beacons",
                "badge_strength",
                "observed_at",
                "received_at",
            ],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "badge_id": _IDENTIFIER,
                "pi_id": {
                    **_IDENTIFIER,
                    "description": "The first gateway that posted it.",
                },
                "beacons": {
                    "type": "object",
                    "description": "RSSI in dBm per beacon id, without -128 values.",
                    "additionalProperties": {
                        "type": "integer",
                        "minimum": -127,
                        "maximum": 20,
                    },
                },
                "badge_strength": {"type": ["integer", "null"]},
                "observed_at": {
                    **_TIMESTAMP,
                    "description": "When it was heard, UTC: the gateway's "
                    "observed_at, or else received_at.",
                },
                "received_at": {**_TIMESTAMP, "description": "When we received it."},
            },
        },
        "FieldError": {
            "type": "object",
            "required": ["field", "message"],
            "properties": {
                "field": {
                    "type": "string",
                    "description": "Dotted path of the field, e.g. beacons.b-hall; "
                    "in a batch it starts with the item's index; body for the "
                    "body as a whole.",
                },
                "message": {"type": "string"},
            },
        },
        "Error": {
            "description": "Every error response.",
            "type": "object",
            "required": ["status", "error", "message"],
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status."},
                "error": {
                    "type": "string",
                    "description": "The status as a name, e.g. not_found, or "
                    "invalid (400) or duplicate (409).",
                },
                "message": {"type": "string"},
                "errors": {
                    "description": "Only on 400 invalid: the fields at fault.",
                    "type": "array",
                    "items": _ref("FieldError"),
                },
            },
        },
        "ItemResult": {
            "type": "object",
            "required": ["index", "status"],
            "properties": {
                "index": {"type": "integer", "minimum": 0},
                "status": {"enum": ["created", "duplicate", "rejected"]},
                "id": {
                    "type": "integer",
                    "description": "The stored reading's id (created only).",
                },
                "errors": {
                    "type": "array",
                    "items": _ref("FieldError"),
                    "description": "Why it was rejected (rejected only).",
                },
            },
        },
        "BatchResult": {
            "type": "object",
            "required": ["results", "created", "duplicate", "rejected"],
            "properties": {
                "results": {"type": "array", "items": _ref("ItemResult")},
                "created": {"type": "integer", "minimum": 0},
                "duplicate": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
            },
        },
        "ReadingsPage": {
            "type": "object",
            "required": ["readings", "next_after"],
            "properties": {
                "readings": {"type": "array", "items": _ref("Reading")},
                "next_after": {
                    "type": ["integer", "null"],
                    "description": "Pass as after to get the readings that "
                    "follow: the last id returned, else the after given "
                    "(null when neither).",
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "database", "dedup"],
            "properties": {
                "status": {"enum": ["ok", "unavailable"]},
                "database": {"enum": ["ok", "unavailable"]},
                "dedup": {
                    "type": "object",
                    "required": ["backend"],
                    "description": "memory: claims; redis: redis (ok or "
                    "unavailable), fallbacks, cache_hits.",
                    "properties": {
                        "backend": {"enum": ["memory", "redis"]},
                        "claims": {"type": "integer"},
                        "redis": {"enum": ["ok", "unavailable"]},
                        "fallbacks": {"type": "integer"},
                        "cache_hits": {"type": "integer"},
                    },
                },
            },
        },
    }


_RESPONSES = {
    "Invalid": _response(
        "The body or a parameter is invalid; errors name it.", "Error"
    ),
    "Duplicate": _response("Already received: not stored again.", "Error"),
    "TooLarge": _response("The body, or the batch, is too large.", "Error"),
    "UnsupportedMediaType": _response(
        "The Content-Type is not application/json.", "Error"
    ),
    "Unavailable": _response(
        "The database is unavailable; retry after Retry-After seconds.",
        "Error",
        headers=_RETRY_AFTER,
    ),
    "Unauthorized": _response(
        "No credentials, or credentials that are not valid (an unknown or "
        "revoked token, an expired session): log in, or send a valid "
        "gateway token.",
        "Error",
        headers=_WWW_AUTHENTICATE,
    ),
    "Forbidden": _response(
        "The credentials are valid but do not allow this: a role below the "
        "one needed, a gateway token on a staff route, or a missing or "
        "invalid CSRF token on a form.",
        "Error",
    ),
    "Error": _response("Any other error.", "Error"),
}

_SECURITY_SCHEMES = {
    "gatewayToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A gateway's token (stg_…), made by an admin on "
        "/admin/gateway_tokens and good for that gateway's readings only. "
        "See /docs/authentication.",
    },
    "staffSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "stethoscope_session",
        "description": "The session cookie a member of staff gets by logging "
        "in at /login; a viewer role or above. See /docs/authentication.",
    },
}
_STAFF = [{"staffSession": []}]
_UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
_FORBIDDEN = {"$ref": "#/components/responses/Forbidden"}


def _ingest_security(settings) -> list[dict]:
    if settings["stethoscope.ingest.require_token"]:
        return [{"gatewayToken": []}]
    # {} : no credentials at all, from an allowed address.
    return [{"gatewayToken": []}, {}]


def _ingest_auth(settings) -> str:
    if settings["stethoscope.ingest.require_token"]:
        return "Needs the posting gateway's token."
    allowed = settings["stethoscope.ingest.allow_ips"]
    where = (
        "from " + ", ".join(str(network) for network in allowed)
        if allowed
        else "from any address"
    )
    return (
        "A gateway token is optional on this server "
        f"(stethoscope.ingest.require_token = false): without one, {where}. "
        "A token that is sent must be valid."
    )


def _paths(settings) -> dict[str, Any]:
    page_limit = settings["stethoscope.readings.page_limit"]
    unavailable = {"$ref": "#/components/responses/Unavailable"}
    error = {"$ref": "#/components/responses/Error"}
    return {
        "/rssi_readings": {
            "post": {
                "operationId": "postReadings",
                "summary": "Post one reading, or a batch of readings",
                "description": "One reading object, answered 201 or 409; or a "
                "JSON array of readings (each with observed_at), answered 200 "
                "with a result per item. See /docs/rssi_readings. "
                + _ingest_auth(settings),
                "tags": ["ingest"],
                "security": _ingest_security(settings),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    _ref("ReadingIn"),
                                    {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": settings[
                                            "stethoscope.ingest.max_batch_items"
                                        ],
                                        "items": _ref("BatchItemIn"),
                                    },
                                ]
                            },
                            "examples": {
                                "single": {
                                    "value": {
                                        "badge_id": "badge-17",
                                        "pi_id": "pi-kitchen",
                                        "beacons": {"b-kitchen": -58, "b-hall": -71},
                                        "badge_strength": -62,
                                    }
                                },
                                "batch": {
                                    "value": [
                                        {
                                            "badge_id": "badge-17",
                                            "pi_id": "pi-hall",
                                            "beacons": {"b-kitchen": -60},
                                            "observed_at": "2026-11-28T17:58:01Z",
                                        }
                                    ]
                                },
                            },
                        }
                    },
                },
                "responses": {
                    "200": _response(
                        "A batch: what became of each item.", "BatchResult"
                    ),
                    "201": _response("The reading is stored (committed).", "Reading"),
                    "400": {"$ref": "#/components/responses/Invalid"},
                    "401": _UNAUTHORIZED,
                    "403": _response(
                        "The token belongs to another gateway than a "
                        "reading's pi_id (nothing of the request is stored), "
                        "or a staff session was sent instead of a token.",
                        "Error",
                    ),
                    "409": {"$ref": "#/components/responses/Duplicate"},
                    "413": {"$ref": "#/components/responses/TooLarge"},
                    "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    "503": unavailable,
                    "default": error,
                },
            },
            "get": {
                "operationId": "listReadings",
                "summary": "Stored readings in id order, paged by id",
                "tags": ["ingest"],
                "security": _STAFF,
                "parameters": [
                    {
                        "name": "badge_id",
                        "in": "query",
                        "description": "Only this badge's readings.",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "pattern": "^[!-~]+$",
                        },
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "description": "Readings with an id greater than this; "
                        "without it, the latest limit readings.",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 2**63 - 1,
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": page_limit,
                            "default": min(100, page_limit),
                        },
                    },
                ],
                "responses": {
                    "200": _response("A page of readings.", "ReadingsPage"),
                    "400": {"$ref": "#/components/responses/Invalid"},
                    "401": _UNAUTHORIZED,
                    "403": _FORBIDDEN,
                    "503": unavailable,
                    "default": error,
                },
            },
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Whether the database and the deduplicator answer",
                "tags": ["ops"],
                "security": [],
                "responses": {
                    "200": _response("Everything answers.", "Health"),
                    "503": _response(
                        "The database does not answer.", "Health", headers=_RETRY_AFTER
                    ),
                    "default": error,
                },
            }
        },
    }


def _version() -> str:
    try:
        return version("stethoscope")
    except PackageNotFoundError:  # running from a source tree, not installed
        return "0"


# Features that document their own JSON routes: each module has
# ``paths(settings) -> dict`` and ``schemas(settings) -> dict`` (components),
# and may use the helpers below (ref, response, STAFF, UNAUTHORIZED, …).
FEATURE_DOCUMENTS: tuple[str, ...] = ()

# Public names for the feature modules.
ref = _ref
response = _response
STAFF = _STAFF
UNAUTHORIZED = _UNAUTHORIZED
FORBIDDEN = _FORBIDDEN
TIMESTAMP = _TIMESTAMP
IDENTIFIER = _IDENTIFIER


def _features():
    return [importlib.import_module(name) for name in FEATURE_DOCUMENTS]


def build_openapi(settings) -> dict[str, Any]:
    """The OpenAPI document for the parsed ``settings``."""
    document = _build_core(settings)
    for feature in _features():
        document["paths"].update(feature.paths(settings))
        document["components"]["schemas"].update(feature.schemas(settings))
    return document


def _build_core(settings) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stethoscope API",
            "version": _version(),
            "description": "Badge readings from gateways, and what we have seen "
            "of gateways and badges. Gateways authenticate with a bearer token, "
            "staff with the session cookie of a login; see "
            "/docs/authentication. Human-readable documentation: /docs.",
        },
        "tags": [
            {"name": "ingest", "description": "Badge readings"},
            {"name": "registry", "description": "Gateways and badges"},
            {"name": "ops", "description": "Operations"},
        ],
        "paths": _paths(settings),
        "components": {
            "schemas": {
                **_reading_in_schemas(settings["stethoscope.ingest.max_beacons"]),
                **_output_schemas(settings),
            },
            "responses": copy.deepcopy(_RESPONSES),
            "securitySchemes": copy.deepcopy(_SECURITY_SCHEMES),
        },
    }
