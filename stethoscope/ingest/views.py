"""POST /rssi_readings (one reading or a batch) and GET /rssi_readings."""

import orjson
from pyramid.httpexceptions import (
    HTTPForbidden,
    HTTPRequestEntityTooLarge,
    HTTPUnsupportedMediaType,
)
from pyramid.response import Response
from pyramid.view import view_config

from ..ops.errors import invalid_response
from ..permissions import INGEST, VIEW
from ..security import GatewayIdentity
from .schemas import (
    IDENTIFIER,
    FieldError,
    InvalidPayload,
    ReadingIn,
    parse_json,
    validate_reading,
)
from .services import ReadingQueryService

DUPLICATE_BODY = orjson.dumps(
    {"status": 409, "error": "duplicate", "message": "already received"}
)


def _read_json_body(request, limit: int):
    if request.content_type != "application/json":
        raise HTTPUnsupportedMediaType("Content-Type must be application/json")
    if request.content_length is not None and request.content_length > limit:
        raise HTTPRequestEntityTooLarge(f"the body may be at most {limit} bytes")
    # request.body rewinds the (seekable) input, so pyramid_retry can replay
    # it; waitress's max_request_body_size bounds what it buffered.
    body = request.body
    if len(body) > limit:
        raise HTTPRequestEntityTooLarge(f"the body may be at most {limit} bytes")
    return body


def duplicate_response() -> Response:
    return Response(body=DUPLICATE_BODY, status=409, content_type="application/json")


def read_post(request, limits):
    """The posted JSON: a single reading (validated and allowed for this
    gateway) or a batch (a list, validated later item by item)."""
    body = _read_json_body(request, limits.max_batch_bytes)
    data = parse_json(body)
    if isinstance(data, list):
        return data
    if len(body) > limits.max_body_bytes:
        raise HTTPRequestEntityTooLarge(
            f"a single reading may be at most {limits.max_body_bytes} bytes"
        )
    item = validate_reading(data, max_beacons=limits.max_beacons)
    _check_gateway(request, [item])
    return item


@view_config(
    route_name="ingest.readings", renderer="json", permission=INGEST, require_csrf=False
)
def post_readings(request):
    limits = request.registry["stethoscope.ingest.limits"]
    posted = read_post(request, limits)
    if isinstance(posted, list):
        return _post_batch(request, request.ingest, posted, limits)
    result = request.ingest.ingest_one(posted, request.client_ip)
    if result.status == "duplicate":
        return duplicate_response()
    request.response.status = 201
    return result.reading


def _check_gateway(request, items) -> None:
    """A gateway's token is good for its own readings only."""
    identity = request.identity
    if not isinstance(identity, GatewayIdentity):
        return
    for item in items:
        if item.pi_id != identity.gateway_id:
            raise HTTPForbidden(
                f"this token belongs to gateway {identity.gateway_id!r}, "
                f"not {item.pi_id!r} (pi_id)"
            )


def _post_batch(request, service, data: list, limits):
    if not data:
        raise InvalidPayload([FieldError("body", "the batch is empty")])
    if len(data) > limits.max_batch_items:
        raise HTTPRequestEntityTooLarge(
            f"a batch may hold at most {limits.max_batch_items} readings"
        )
    items = []
    for index, raw in enumerate(data):
        prefix = f"{index}."
        try:
            item = validate_reading(raw, max_beacons=limits.max_beacons, prefix=prefix)
            if item.observed_at is None:
                raise InvalidPayload(
                    [FieldError(prefix + "observed_at", "is required in a batch")]
                )
            items.append(item)
        except InvalidPayload as exc:
            items.append(exc)
    _check_gateway(request, [item for item in items if isinstance(item, ReadingIn)])
    results = service.ingest_many(items, request.client_ip)
    counts = {"created": 0, "duplicate": 0, "rejected": 0}
    for result in results:
        counts[result.status] += 1
    return {
        "results": [result.as_json(index) for index, result in enumerate(results)],
        **counts,
    }


@view_config(route_name="ingest.readings.page", renderer="json", permission=VIEW)
def get_readings(request):
    page_limit = request.registry.settings["stethoscope.readings.page_limit"]
    badge_id = request.GET.get("badge_id") or None
    if badge_id is not None and not IDENTIFIER.fullmatch(badge_id):
        raise InvalidPayload([FieldError("badge_id", "is not a valid badge id")])
    after = _int_param(request, "after", 0, 2**63 - 1, None)
    limit = _int_param(request, "limit", 1, page_limit, min(100, page_limit))
    readings = request.find_service(ReadingQueryService).page(
        badge_id=badge_id, after=after, limit=limit
    )
    next_after = readings[-1]["id"] if readings else after
    return {"readings": readings, "next_after": next_after}


def _int_param(request, name, minimum, maximum, default):
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidPayload([FieldError(name, "must be a whole number")]) from None
    if not minimum <= value <= maximum:
        raise InvalidPayload(
            [FieldError(name, f"must be between {minimum} and {maximum}")]
        )
    return value


@view_config(context=InvalidPayload)
def invalid_payload(exc, request):
    return invalid_response(request, exc.errors)
