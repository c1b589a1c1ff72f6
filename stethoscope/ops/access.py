"""Each request: an id, one line in the log, its count and time in the metrics.

The id is the caller's ``X-Request-ID`` when it is sane (1-64 letters,
digits and ``._:-``: nginx's ``$request_id``, a gateway's own), else made
here; it is sent back in the ``X-Request-ID`` header and in every error
body (``request_id``), and logged with the line and with a traceback, so a
complaint quoting it finds both. The tween below does this for every
request Pyramid answers; the ingest fast path, which answers before
Pyramid, uses the same pieces (``sane_id``, ``NEW_IDS``,
``with_request_id``, ``log_request``; ``Metrics.ingest_answer`` for its
counts).

The line is logged by ``stethoscope.access`` at INFO, its fields given to
the formatter as ``record.fields``: ops.logging.JsonFormatter writes them
as one JSON object per line (``stethoscope.logging.format = json``), the
text formatter shows the message. When that logger is not enabled for INFO
(a logger ``stethoscope.access`` at WARN in the ini file), nothing is
formatted: one level check per request.
"""

import itertools
import logging
import operator
import os
import re
import time

from pyramid.interfaces import ISecurityPolicy

from .metrics import METHODS, METRICS, OTHER

REQUEST_ID = "stethoscope.request_id"
HEADER = "X-Request-ID"
sane_id = re.compile(r"[A-Za-z0-9._:-]{1,64}").fullmatch
# Each next() makes an id in C: 12 random hex digits for this process, and
# a counter ("3f9c2a41d07b-42"). Cheaper than a uuid4, and as unique for
# logs.
NEW_IDS = map(
    operator.add,
    itertools.repeat(os.urandom(6).hex() + "-"),
    map(str, itertools.count(1)),
)

access_log = logging.getLogger("stethoscope.access")


def request_id(environ) -> str:
    """This request's id: made (or taken from ``X-Request-ID``) once, kept
    in the environ, so that the tween and the error views agree on it."""
    rid = environ.get(REQUEST_ID)
    if rid is None:
        rid = environ.get("HTTP_X_REQUEST_ID")
        if rid is None or not sane_id(rid):
            rid = next(NEW_IDS)
        environ[REQUEST_ID] = rid
    return rid


def with_request_id(body: bytes, rid: str) -> bytes:
    """A JSON object rendered already (``{…}``) with ``request_id`` added.

    ``rid`` is ASCII with nothing to escape (``request_id`` made it so).
    """
    return body[:-1] + b',"request_id":"' + rid.encode("ascii") + b'"}'


def log_request(
    method: str,
    route: str,
    status: int,
    seconds: float,
    rid: str,
    who: tuple[str, str] | None = None,
) -> None:
    """The request's line: ``who`` is ("gateway", id) or ("user", name)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    milliseconds = seconds * 1000
    fields = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(milliseconds, 2),
        "request_id": rid,
    }
    by = ""
    if who is not None:
        fields[who[0]] = who[1]
        by = f" {who[0]}={who[1]}"
    access_log.info(
        "%s %s %s %.1f ms %s%s",
        method,
        route,
        status,
        milliseconds,
        rid,
        by,
        extra={"fields": fields},
    )


def request_tween_factory(handler, registry):
    metrics = registry[METRICS]
    policy = registry.queryUtility(ISecurityPolicy)

    def request_tween(request):
        start = time.perf_counter()
        rid = request_id(request.environ)
        try:
            response = handler(request)
        except BaseException:
            # Nothing rendered it (excview answers every Exception): the
            # server will send its own 500.
            _answered(request, 500, start, rid, metrics, policy)
            raise
        response.headerlist.append((HEADER, rid))
        _answered(request, response.status_int, start, rid, metrics, policy)
        return response

    return request_tween


def _answered(request, status, start, rid, metrics, policy) -> None:
    seconds = time.perf_counter() - start
    route = request.matched_route
    route = route.name if route is not None else "unmatched"
    method = request.method if request.method in METHODS else OTHER
    metrics.request(route, method, status, seconds)
    if access_log.isEnabledFor(logging.INFO):
        log_request(method, route, status, seconds, rid, _who(request, policy))


def _who(request, policy) -> tuple[str, str] | None:
    """Who the request was answered for, if the request has found out
    already: never a query for the log's sake (a session to look up)."""
    known = getattr(policy, "known_identity", None)
    identity = known(request) if known is not None else None
    if identity is None:
        return None
    gateway = getattr(identity, "gateway_id", None)
    if gateway is not None:
        return ("gateway", gateway)
    return ("user", identity.actor)
