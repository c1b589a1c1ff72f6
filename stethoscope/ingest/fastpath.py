"""Answering repeats early: most ingest POSTs never reach Pyramid.

Nineteen POSTs in twenty repeat an advertisement this process already knows
is claimed. This WSGI filter, in front of the Pyramid router, answers those
409 itself: it reads the body, asks the security policy whether the caller
may post readings (without a query), validates the reading with the view's
own function and asks the deduplicator. Whenever anything is not certain (a
batch, an ``observed_at``, a body or caller the view would refuse, a cookie,
a token not verified lately, a fingerprint only Redis knows about), it steps
aside and the request takes the whole way, so the answer is always the one
the view would give. It sits in front of the router rather than in a tween
because Pyramid's request, router and tweens cost as much as the rest of a
repeat together (docs/benchmarks.md).
"""

import io

import orjson
from pyramid.interfaces import ISecurityPolicy

from ..db import utcnow
from ..ops.headers import HEADERS, HSTS, NO_STORE
from ..security import client_address
from .schemas import InvalidPayload, fingerprint, validate_reading
from .views import DUPLICATE_BODY

INGEST_PATH = "/rssi_readings"
JSON = "application/json"


class KnownDuplicateFilter:
    """The WSGI application: ``app`` (the Pyramid router) behind the filter."""

    def __init__(self, app):
        self.app = app
        self.registry = app.registry
        self.policy = app.registry.getUtility(ISecurityPolicy)
        self.proxies = app.registry["stethoscope.trusted_proxies"]
        self.limits = app.registry["stethoscope.ingest.limits"]
        self.deduplicator = app.registry["stethoscope.deduplicator"]
        self.tracker = app.registry["stethoscope.activity"]
        # The headers the view's 409 gets from webob and the security
        # headers tween, built once.
        base = [
            ("Content-Type", JSON),
            ("Content-Length", str(len(DUPLICATE_BODY))),
            *HEADERS,
            NO_STORE,
        ]
        self._headers = base
        self._https_headers = [*base, HSTS]

    def __call__(self, environ, start_response):
        if (
            environ["REQUEST_METHOD"] == "POST"
            and environ.get("PATH_INFO") == INGEST_PATH
            and self._known_duplicate(environ)
        ):
            # HSTS over HTTPS only, as the security headers tween decides.
            https = environ["wsgi.url_scheme"] == "https"
            start_response(
                "409 Conflict", list(self._https_headers if https else self._headers)
            )
            return [DUPLICATE_BODY]
        return self.app(environ, start_response)

    def _known_duplicate(self, environ) -> bool:
        if "HTTP_COOKIE" in environ:
            return False
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type != JSON and not content_type.startswith(JSON + ";"):
            return False
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return False
        if not 0 < length <= self.limits.max_body_bytes:
            return False
        body = environ["wsgi.input"].read(length)
        # Put the body back for the whole way, seekable as webob wants it
        # (pyramid_retry replays it).
        environ["wsgi.input"] = io.BytesIO(body)
        environ["webob.is_body_seekable"] = True
        if len(body) != length:
            return False
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(data, dict):
            return False
        try:
            item = validate_reading(data, max_beacons=self.limits.max_beacons)
        except InvalidPayload:
            return False
        # A live post only: an observed_at has bounds to check.
        if item.observed_at is not None:
            return False
        client_ip = client_address(environ, self.proxies)
        grant = self.policy.ingest_grant_without_database(environ, client_ip)
        if grant is None:
            return False
        # A gateway's token is good for its own readings only.
        if grant.gateway_id is not None and grant.gateway_id != item.pi_id:
            return False
        if not self.deduplicator.known_duplicate(
            fingerprint(item.badge_id, item.beacons)
        ):
            return False
        self.tracker.record(
            item.pi_id, item.badge_id, client_ip, utcnow(), duplicate=True
        )
        return True
