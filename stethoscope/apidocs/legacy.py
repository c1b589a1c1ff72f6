"""The hand-written OpenAPI 3.1 document of the routes not yet declared
with ``stethoscope.endpoints.endpoint``, merged under the generated one
(stethoscope.apidocs.openapi) until every feature is converted. Ingest
(/rssi_readings) and ops (/health) are generated now.

Who may call what is stethoscope.security's business; here each operation
says which credentials it takes (``security``) and that it may answer 401
(none, or bad ones) and 403 (valid ones that do not allow this).
"""

import copy
import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

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


def _output_schemas(settings) -> dict[str, Any]:
    return {
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
    }


_RESPONSES = {
    "Invalid": _response(
        "The body or a parameter is invalid; errors name it.", "Error"
    ),
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


def _paths(settings) -> dict[str, Any]:
    # Every core route (ingest, ops, the registry's lists of what was seen)
    # is declared with @endpoint now.
    return {}


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
            "schemas": _output_schemas(settings),
            "responses": copy.deepcopy(_RESPONSES),
            "securitySchemes": copy.deepcopy(_SECURITY_SCHEMES),
        },
    }
