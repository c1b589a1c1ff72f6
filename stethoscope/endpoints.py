"""One way to declare a JSON endpoint: route, permission, models, statuses.

A JSON view is declared once, with ``@endpoint(...)``::

    @endpoint(
        route_name="registry.room",
        request_method="PATCH",
        permission=ADMIN,
        summary="Change a room",
        path=RoomPath,
        body=RoomChange,
        response=Room,
        errors={404: "No such room.", 409: "The name is taken."},
    )
    def change_room(request):
        change = request.validated.body
        ...
        return Room(...)

The declaration is a view option (``endpoint=``), read by a view deriver
(warehouse's ``api_version`` works the same way): before the view runs it
parses the path, query and body with their models into
``request.validated``, raising ``stethoscope.errors`` (400 naming the field,
413, 415, 404 for a path that cannot exist); the view returns a model
instance, rendered as JSON with the declared status. The OpenAPI document
(``stethoscope.apidocs.openapi``) is generated from the same declarations,
collected from Pyramid's introspector, so the document cannot drift from
the code. Permission checks run before the deriver: 401/403 come before 400.

What several declarations share is given once, with ``functools.partial``:
a feature's permission and tags, a route's path model, response and errors
where it has more than one method (``training_endpoint`` and
``run_endpoint`` in ``labels/views.py``); an option given again replaces
the shared one. The view's name is its operation id in the document
(``change_room``: changeRoom).
"""

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pydantic
import pydantic.fields
from pyramid.response import Response
from pyramid.view import view_config

from .errors import FieldError, Invalid, NotFound, TooLarge, UnsupportedMediaType

DEFAULT_MAX_BODY_BYTES = 64 << 10


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """What the document says of one view, and what the deriver enforces."""

    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    path: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    body: type[pydantic.BaseModel] | None = None
    # The view reads the body itself (ingest: a reading or a batch, parsed
    # before any model by the code the fast path shares); documented only.
    parse_body: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Successful responses by status; ``response`` is the common case.
    responses: Mapping[int, type[pydantic.BaseModel] | None] = dataclasses.field(
        default_factory=dict
    )
    # Error statuses the view itself may answer, with what each means. 400
    # (when anything is parsed), 401/403 (when a permission is needed),
    # 413/415 (with a body) and 503 are added by the document.
    errors: Mapping[int, str] = dataclasses.field(default_factory=dict)
    # Change the generated operation where a setting shapes it (limits).
    amend: Callable[[dict, Mapping[str, Any]], None] | None = None
    # Who may call it (the view's permission; the document's security).
    permission: str | None = None

    @property
    def status(self) -> int:
        return min(self.responses) if self.responses else 200


@dataclasses.dataclass(frozen=True)
class Validated:
    """What the deriver parsed for the view: a model instance or None each."""

    path: Any = None
    query: Any = None
    body: Any = None


def endpoint(
    *,
    route_name: str,
    request_method: str,
    permission: str,
    summary: str,
    response: type[pydantic.BaseModel] | None = None,
    status: int = 200,
    **options,
):
    """``@view_config`` for a JSON endpoint (see the module docstring)."""
    view_options = {
        key: options.pop(key)
        for key in ("require_csrf", "context", "decorator")
        if key in options
    }
    if response is not None or "responses" not in options:
        options["responses"] = {**options.get("responses", {}), status: response}
    return view_config(
        route_name=route_name,
        request_method=request_method,
        permission=permission,
        renderer="json",
        endpoint=Endpoint(summary=summary, permission=permission, **options),
        **view_options,
    )


# ---- parsing -----------------------------------------------------------------


def field_errors(error: pydantic.ValidationError, prefix: str = "") -> list[FieldError]:
    """pydantic's errors as ours: a dotted field path and a short message."""
    errors = []
    for detail in error.errors(include_url=False, include_input=False):
        parts = [str(part) for part in detail["loc"] if part not in ("[key]", "")]
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "is not a known field"
        errors.append(FieldError(prefix + (".".join(parts) or "body"), message))
    return errors


def is_json(request) -> bool:
    """Whether the body is declared JSON (media types ignore case, RFC 9110)."""
    return (request.content_type or "").lower() == "application/json"


def read_body(request, limit: int) -> bytes:
    """The raw body of a JSON request, at most ``limit`` bytes (413, 415)."""
    if not is_json(request):
        raise UnsupportedMediaType("Content-Type must be application/json")
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the body may be at most {limit} bytes")
    # request.body rewinds the (seekable) input, so pyramid_retry can replay
    # it; waitress's max_request_body_size bounds what it buffered.
    body = request.body
    if len(body) > limit:
        raise TooLarge(f"the body may be at most {limit} bytes")
    return body


def parse_json(body: bytes) -> Any:
    """Decode JSON with orjson: it refuses NaN/Infinity, lone surrogates,
    invalid UTF-8 and nesting deeper than 1024 (ARCHITECTURE §5.6)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid([FieldError("body", f"not valid JSON: {exc}")]) from None


def json_body(request, model, limit: int = DEFAULT_MAX_BODY_BYTES, **context):
    """The body as ``model``: 415 unless JSON, 413 above ``limit``, 400 naming
    the field when it does not validate."""
    data = parse_json(read_body(request, limit))
    if not isinstance(data, dict):
        raise Invalid([FieldError("body", "must be a JSON object")])
    try:
        return model.model_validate(data, context=context or None)
    except pydantic.ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


def _is_list(field: pydantic.fields.FieldInfo) -> bool:
    return getattr(field.annotation, "__origin__", None) is list or (
        field.annotation is list
    )


def query_pairs(request) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, in order.

    Only "&" separates them: webob's request.GET splits on ";" too, which
    would make ``?site=s;x`` an unknown parameter ``x``, though an id may
    hold ";". A query string that is not UTF-8 (raw, or once unquoted)
    raises UnicodeDecodeError, answered 400 naming query_string
    (stethoscope.ops.errors), as request.GET's would be.
    """
    # WSGI hands the bytes over as a latin-1 string.
    query = request.environ.get("QUERY_STRING", "").encode("latin-1")
    return urllib.parse.parse_qsl(
        query.decode("utf-8"),
        keep_blank_values=True,
        encoding="utf-8",
        errors="strict",
        separator="&",
    )


def query_params(request, model):
    """The query string as ``model``: repeated parameters for list fields
    (the last one given for others), unknown ones refused (the model
    forbids extras)."""
    values: dict[str, Any] = {}
    for name, value in query_pairs(request):
        field = model.model_fields.get(name)
        if field is not None and _is_list(field):
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise Invalid(field_errors(exc)) from None


def path_params(request, model):
    """The route's placeholders as ``model``; a value that cannot name
    anything (an id too large, not digits) is 404, like a missing row."""
    try:
        return model.model_validate(request.matchdict or {})
    except pydantic.ValidationError:
        raise NotFound(f"nothing here: {request.path_info}") from None


# ---- the view deriver --------------------------------------------------------


def endpoint_view(view, info):
    spec: Endpoint | None = info.options.get("endpoint")
    if spec is None:
        return view

    def parsed(context, request):
        request.validated = Validated(
            path=path_params(request, spec.path) if spec.path else None,
            query=query_params(request, spec.query) if spec.query else None,
            body=(
                json_body(request, spec.body, spec.max_body_bytes)
                if spec.body is not None and spec.parse_body
                else None
            ),
        )
        request.response.status = spec.status
        return view(context, request)

    return parsed


endpoint_view.options = ("endpoint",)


def json_response(value, status: int = 200, headers=None) -> Response:
    """A JSON response built outside a renderer (an error view, a 409)."""
    return Response(
        body=orjson.dumps(value, default=jsonable),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def jsonable(value):
    """orjson's fallback: models by their JSON form."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if hasattr(value, "as_json"):
        return value.as_json()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def includeme(config):
    config.add_view_deriver(endpoint_view)
