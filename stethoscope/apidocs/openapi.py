"""The OpenAPI 3.1 document, generated from the declared endpoints.

Every JSON view is declared with ``stethoscope.endpoints.endpoint``: its
route, permission, models and statuses are view options, which Pyramid
keeps in its introspector. Once every feature is included, the document is
built from there: paths from the routes' patterns, parameters and bodies
from the pydantic models, components from ``models_json_schema``, security
from the permission. No feature is listed here; including a feature is what
puts it in the document.
"""

import functools
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from pydantic.json_schema import models_json_schema

from ..config import ConfigurationError
from ..endpoints import Endpoint
from ..permissions import INGEST, PUBLIC
from ..schemas import Error

REF = "#/components/schemas/{model}"
# {name} or {name:regex} in a Pyramid route pattern.
PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": 'Bearer realm="stethoscope"',
        "schema": {"type": "string"},
    }
}

# What each status means when a view does not say more.
STANDARD_ERRORS = {
    400: "The body or a parameter is invalid; errors name it.",
    401: "No credentials, or credentials that are not valid (an unknown or "
    "revoked token, an expired session): log in, or send a valid token.",
    403: "The credentials are valid but do not allow this: a role below the "
    "one needed, a gateway token on a staff route, or a missing or invalid "
    "CSRF token with a session cookie.",
    404: "Nothing with this id.",
    413: "The body is too large.",
    415: "The Content-Type is not application/json.",
    503: "The database is unavailable; retry after Retry-After seconds.",
}

SECURITY_SCHEMES = {
    "gatewayToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A gateway's token (stg_…), made by an admin on "
        "/admin/gateway_tokens and good for that gateway's readings only. "
        "See /docs/authentication.",
    },
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A user's API token (stu_…), acting with that user's "
        "role; for the home's other systems. See /docs/authentication.",
    },
    "staffSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "stethoscope_session",
        "description": "The session cookie a member of staff gets by logging "
        "in at /login; a viewer role or above. See /docs/authentication.",
    },
}
STAFF = [{"staffSession": []}, {"userToken": []}]


def _version() -> str:
    try:
        return version("stethoscope")
    except PackageNotFoundError:  # running from a source tree, not installed
        return "0"


def openapi_path(pattern: str) -> str:
    """``/training_runs/{run_id:\\d+}`` → ``/training_runs/{run_id}``."""
    path = PLACEHOLDER.sub(lambda match: "{" + match.group(1) + "}", pattern)
    return path if path.startswith("/") else "/" + path


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def declared_endpoints(introspector) -> Iterable[tuple[str, str, Any, Endpoint]]:
    """(path, method, view introspectable, endpoint) of every declared view."""
    for item in introspector.get_category("views") or []:
        view = item["introspectable"]
        spec = view.get("endpoint")
        if spec is None:
            continue
        route = introspector.get("routes", view["route_name"])
        methods = view["request_methods"]
        if isinstance(methods, str):
            methods = (methods,)
        for method in methods:
            yield openapi_path(route["pattern"]), method.lower(), view, spec


def _response(description: str, schema: dict | None = None, **extra) -> dict:
    response: dict[str, Any] = {"description": description, **extra}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response


def _parameters(where: str, schema: dict, definitions: Mapping) -> list[dict]:
    """One OpenAPI parameter per property of a path or query model."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        if prop.get("type") == "array":
            parameter["explode"] = True
        parameters.append(parameter)
    return parameters


def _security(permission) -> list[dict]:
    if permission == PUBLIC:
        return []
    if permission == INGEST:
        return [{"gatewayToken": []}]
    return list(STAFF)


def _json_schemas(models: tuple) -> tuple[dict, dict]:
    """``models_json_schema`` of ``models``, a fresh copy each call (the
    document is amended in place)."""
    refs, definitions = orjson.loads(_json_schemas_once(models))
    return dict(zip(models, refs, strict=True)), definitions


@functools.lru_cache(maxsize=4)
def _json_schemas_once(models: tuple) -> bytes:
    # Generating the schemas is most of the document's cost; apps built
    # again in one process (the test suite builds thousands) share it.
    refs, definitions = models_json_schema(list(models), ref_template=REF)
    return orjson.dumps([[refs[model] for model in models], definitions])


def build_openapi(registry) -> dict[str, Any]:
    """The document of every endpoint declared in ``registry``."""
    endpoints = list(declared_endpoints(registry.introspector))
    models: list[tuple[type, str]] = [(Error, "serialization")]
    for _path, _method, _view, spec in endpoints:
        for model in (spec.path, spec.query, spec.body):
            if model is not None:
                models.append((model, "validation"))
        models += [(m, "serialization") for m in spec.responses.values() if m]
    refs, definitions = _json_schemas(tuple(dict.fromkeys(models)))
    schemas = definitions.get("$defs", {})

    def ref(model, mode):
        return refs[(model, mode)]

    error = ref(Error, "serialization")
    paths: dict[str, dict] = {}
    operation_ids: dict[str, str] = {}
    for path, method, view, spec in endpoints:
        name = view["callable"].__name__
        # The view's name: list_training_runs is listTrainingRuns.
        operation_id = _camel(name)
        where = f"{method.upper()} {path}"
        if operation_ids.setdefault(operation_id, where) != where:
            raise ConfigurationError(
                f"two endpoints named {operation_id!r}: "
                f"{operation_ids[operation_id]} and {where}"
            )
        parameters = []
        if spec.path is not None:
            parameters += _parameters("path", ref(spec.path, "validation"), schemas)
        else:
            parameters += [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
                for name in PLACEHOLDER.findall(path)
            ]
        if spec.query is not None:
            parameters += _parameters("query", ref(spec.query, "validation"), schemas)
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": spec.summary,
            "tags": list(spec.tags or (view["route_name"].split(".")[0],)),
            "security": _security(spec.permission),
        }
        if spec.description:
            operation["description"] = spec.description
        if parameters:
            operation["parameters"] = parameters
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": ref(spec.body, "validation")}
                },
            }
        responses: dict[str, Any] = {}
        for status, model in sorted(spec.responses.items()):
            schema = ref(model, "serialization") if model else None
            description = (
                (model.__doc__ or "").strip().split("\n\n")[0] if model else ""
            )
            responses[str(status)] = _response(
                " ".join(description.split()) or "Done.", schema
            )
        errors = dict(spec.errors)
        if spec.path is not None or spec.query is not None or spec.body is not None:
            errors.setdefault(400, STANDARD_ERRORS[400])
        if spec.path is not None:
            errors.setdefault(404, STANDARD_ERRORS[404])
        if spec.body is not None:
            errors.setdefault(413, STANDARD_ERRORS[413])
            errors.setdefault(415, STANDARD_ERRORS[415])
        if spec.permission != PUBLIC:
            errors.setdefault(401, STANDARD_ERRORS[401])
            errors.setdefault(403, STANDARD_ERRORS[403])
        errors.setdefault(503, STANDARD_ERRORS[503])
        for status, description in sorted(errors.items()):
            extra = {}
            if status == 503:
                extra["headers"] = RETRY_AFTER
            elif status == 401:
                extra["headers"] = WWW_AUTHENTICATE
            responses[str(status)] = _response(description, error, **extra)
        responses["default"] = _response("Any other error.", error)
        operation["responses"] = responses
        if spec.amend is not None:
            spec.amend(operation, registry.settings)
        paths.setdefault(path, {})[method] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stethoscope API",
            "version": _version(),
            "description": "Badge readings from gateways; where badges are now "
            "and where they were; the house, training runs and models. Gateways "
            "authenticate with a gateway token, staff with the session cookie "
            "of a login, the home's other systems with a user's API token; see "
            "/docs/authentication. Human-readable documentation: /docs.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
