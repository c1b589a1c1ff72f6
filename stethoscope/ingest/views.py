"""POST /rssi_readings (one reading or a batch) and GET /rssi_readings."""

import orjson
from pyramid.response import Response

from ..endpoints import endpoint
from ..errors import Conflict, FieldError, Invalid, TooLarge, ValidationError
from ..ops.access import request_id, with_request_id
from ..permissions import INGEST, VIEW
from ..singletons import INGEST_LIMITS
from .admission import admit, bind, request_grant
from .schemas import (
    BatchResult,
    FieldErrorOut,
    ItemResult,
    Reading,
    ReadingIn,
    ReadingsPage,
    ReadingsPost,
    ReadingsQuery,
    validate_reading,
)
from .services import ReadingQueryService


class Duplicate(Conflict):
    """409: this advertisement is stored already (another gateway's post of
    it, or a retry of one that was)."""

    error = "duplicate"


# A duplicate is most of what gateways post: its answer is rendered once
# (and the fast path sends the same bytes).
DUPLICATE_BODY = orjson.dumps(Duplicate("already received").as_json())
DEFAULT_PAGE = 100


def duplicate_response(request) -> Response:
    body = with_request_id(DUPLICATE_BODY, request_id(request.environ))
    return Response(body=body, status=409, content_type="application/json")


def _post_documented(operation: dict, settings) -> None:
    """The limits and credentials of this server, in the document."""
    beacons = {
        "properties": {
            "beacons": {"maxProperties": settings["stethoscope.ingest.max_beacons"]}
        }
    }
    body = operation["requestBody"]["content"]["application/json"]
    # The model's shape (an object and an array: one of them, never both),
    # with the limits the settings give.
    schema = ReadingsPost.model_json_schema(ref_template="#/components/schemas/{model}")
    single, batch = schema["anyOf"]
    batch["maxItems"] = settings["stethoscope.ingest.max_batch_items"]
    batch["items"] = {"allOf": [batch["items"], beacons]}
    body["schema"] = {
        "description": schema["description"],
        "oneOf": [{"allOf": [single, beacons]}, batch],
    }
    body["examples"] = EXAMPLES
    if settings["stethoscope.ingest.require_token"]:
        operation["security"] = [{"gatewayToken": []}]
        auth = "Needs the posting gateway's token."
    else:
        # {} : no credentials at all, from an allowed address.
        operation["security"] = [{"gatewayToken": []}, {}]
        allowed = settings["stethoscope.ingest.allow_ips"]
        where = (
            "from " + ", ".join(str(network) for network in allowed)
            if allowed
            else "from any address"
        )
        auth = (
            "A gateway token is optional on this server "
            f"(stethoscope.ingest.require_token = false): without one, {where}. "
            "A token that is sent must be valid."
        )
    operation["description"] += " " + auth


EXAMPLES = {
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
}


@endpoint(
    route_name="ingest.readings",
    request_method="POST",
    permission=INGEST,
    require_csrf=False,
    summary="Post one reading, or a batch of readings",
    description="One reading object, answered 201 or 409; or a JSON array of "
    "readings (each with observed_at), answered 200 with a result per item. "
    "See /docs/rssi_readings.",
    tags=("ingest",),
    body=ReadingsPost,
    parse_body=False,
    responses={200: BatchResult, 201: Reading},
    errors={
        403: "The token belongs to another gateway than a reading's pi_id "
        "(nothing of the request is stored), or a staff session was sent "
        "instead of a token.",
        409: "Already received: not stored again.",
        413: "The body, or the batch, is too large.",
    },
    amend=_post_documented,
)
def post_readings(request):
    limits = request.registry[INGEST_LIMITS]
    grant = request_grant(request)
    posted = admit(
        grant,
        request.content_type,
        request.content_length,
        lambda: request.body,
        limits,
    )
    if isinstance(posted, list):
        return _post_batch(request, grant, posted, limits)
    result = request.ingest.ingest_one(posted, request.client_ip)
    if result.status == "duplicate":
        return duplicate_response(request)
    request.response.status = 201
    return Reading(**result.reading)


def _post_batch(request, grant, data: list, limits) -> BatchResult:
    if not data:
        raise Invalid([FieldError("body", "the batch is empty")])
    if len(data) > limits.max_batch_items:
        raise TooLarge(f"a batch may hold at most {limits.max_batch_items} readings")
    items = []
    for index, raw in enumerate(data):
        prefix = f"{index}."
        try:
            item = validate_reading(raw, max_beacons=limits.max_beacons, prefix=prefix)
            # BatchItemIn in the document; said here in words a gateway's
            # log can show.
            if item.observed_at is None:
                raise Invalid(
                    [FieldError(prefix + "observed_at", "is required in a batch")]
                )
            items.append(item)
        except Invalid as exc:
            items.append(exc)
    bind(grant, [item for item in items if isinstance(item, ReadingIn)])
    results = request.ingest.ingest_many(items, request.client_ip)
    counts = {"created": 0, "duplicate": 0, "rejected": 0}
    for result in results:
        counts[result.status] += 1
    return BatchResult(
        results=[
            ItemResult(
                index=index,
                status=result.status,
                id=result.id,
                errors=[
                    FieldErrorOut(field=error.field, message=error.message)
                    for error in result.errors
                ]
                or None,
            )
            for index, result in enumerate(results)
        ],
        **counts,
    )


def _page_documented(operation: dict, settings) -> None:
    page_limit = settings["stethoscope.readings.page_limit"]
    for parameter in operation["parameters"]:
        if parameter["name"] == "limit":
            parameter["schema"] = {
                "type": "integer",
                "minimum": 1,
                "maximum": page_limit,
                "default": min(DEFAULT_PAGE, page_limit),
            }


@endpoint(
    route_name="ingest.readings.page",
    request_method="GET",
    permission=VIEW,
    summary="Stored readings in id order, paged by id",
    tags=("ingest",),
    query=ReadingsQuery,
    response=ReadingsPage,
    amend=_page_documented,
)
def list_readings(request):
    query = request.validated.query
    # The bound is a setting: the model knows only the largest it may be.
    page_limit = request.registry.settings["stethoscope.readings.page_limit"]
    limit = min(DEFAULT_PAGE, page_limit) if query.limit is None else query.limit
    if limit > page_limit:
        raise ValidationError("limit", f"must be between 1 and {page_limit}")
    readings = request.find_service(ReadingQueryService).page(
        badge_id=query.badge_id,
        after=query.after,
        limit=limit,
        since=query.since,
        until=query.until,
    )
    return ReadingsPage(
        readings=[Reading(**reading) for reading in readings],
        next_after=readings[-1]["id"] if readings else query.after,
    )
