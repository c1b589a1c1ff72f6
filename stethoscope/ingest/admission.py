"""Whether a POST of readings is let in: decided here, for both ways in.

A POST /rssi_readings reaches ``admit`` from the view (views.py) or from the
fast path in front of Pyramid (fastpath.py). Each finds the caller's leave
to post its own way, because the fast path has no request, session or
database: the view from the identity Pyramid's permission check (INGEST)
admitted, the fast path from the security policy's answer without a query,
which is "not sure" (None: go the whole way) wherever it could differ.
Everything else (the media type, the sizes, the JSON, the reading, the
token's gateway) is decided by ``admit`` alone, so the two ways cannot
answer differently: the fast path answers only what ``admit`` let in, and
steps aside for everything it refuses.
"""

from collections.abc import Callable

from ..errors import Refused, TooLarge, UnsupportedMediaType
from ..security import OPEN_INGEST, GatewayIdentity, IngestGrant
from .schemas import ReadingIn, parse_json, validate_reading
from .services import IngestLimits

JSON = "application/json"


def is_json(content_type: str) -> bool:
    """Whether a Content-Type header says JSON: the media type ignores case
    and parameters (RFC 9110), ``application/json; charset=utf-8`` too."""
    return content_type == JSON or (
        content_type.partition(";")[0].strip().lower() == JSON
    )


def request_grant(request) -> IngestGrant:
    """The leave to post of a caller the view's permission (INGEST) let in."""
    identity = request.identity
    if isinstance(identity, GatewayIdentity):
        return IngestGrant(identity.gateway_id)
    # Open ingest (no token needed from this address): anyone's readings.
    return OPEN_INGEST


def admit(
    grant: IngestGrant,
    content_type: str,
    content_length: int | None,
    read: Callable[[], bytes],
    limits: IngestLimits,
) -> ReadingIn | list:
    """The posted readings, let in: one reading (valid, and this caller's to
    post) or a batch (a list, its items validated one by one later, each
    against ``bind``). Raises 415, 413, 400 or 403 otherwise.

    ``read`` gives the body, which has ``content_length`` bytes (None: not
    said).
    """
    if not is_json(content_type):
        raise UnsupportedMediaType("Content-Type must be application/json")
    if content_length is not None and content_length > limits.max_batch_bytes:
        raise TooLarge(f"the body may be at most {limits.max_batch_bytes} bytes")
    body = read()
    if len(body) > limits.max_batch_bytes:
        raise TooLarge(f"the body may be at most {limits.max_batch_bytes} bytes")
    data = parse_json(body)
    if isinstance(data, list):
        return data
    if len(body) > limits.max_body_bytes:
        raise TooLarge(f"a single reading may be at most {limits.max_body_bytes} bytes")
    item = validate_reading(data, max_beacons=limits.max_beacons)
    if grant.gateway_id is not None:
        bind(grant, (item,))
    return item


def bind(grant: IngestGrant, items) -> None:
    """A gateway's token is good for its own readings only (403 otherwise,
    and nothing of the request is stored)."""
    if grant.gateway_id is None:
        return
    for item in items:
        if item.pi_id != grant.gateway_id:
            raise Refused(
                f"this token belongs to gateway {grant.gateway_id!r}, "
                f"not {item.pi_id!r} (pi_id)"
            )
