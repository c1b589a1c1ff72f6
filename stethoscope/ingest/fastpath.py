"""Live readings answered early: most ingest POSTs never reach Pyramid.

A gateway's POST of what a badge advertises now is either a repeat (nineteen
in twenty) or the original of an advertisement. This WSGI filter, in front
of the Pyramid router, answers both itself: it asks the security policy
whether the caller may post readings (without a query), lets the POST in
with the view's own decision (``admission.admit``: media type, size, the
reading, the token's gateway), then

* answers 409 for an advertisement this process already knows is claimed;
* otherwise hands the reading to the same ``IngestService`` the view uses,
  which claims it and has the group writer store and commit it (the view's
  path for a live original, docs/architecture.md §5.3), and answers 201
  with the stored reading, or 409 when the claim finds it taken.

Whenever anything is not certain (a batch, an ``observed_at``, a body or
caller ``admit`` refuses, a cookie, a token not verified lately, group
commit switched off) it steps aside and the request takes the whole way, so
the answer is always the one the view would give. If storing fails, nothing
was stored and the claim was released: the request then takes the whole way
too, where pyramid_retry, the 503 and the logs deal with the failure as for
any other request. The filter sits in front of the router rather than in a
tween because Pyramid's request, router, tweens and transaction cost as much
as the rest of the request together (docs/benchmarks.md); what the tweens
do for a reading's answer it does too (tests/unit/ingest/test_fastpath.py
lists them).
"""

import io
import logging
import time

import orjson
from pyramid.interfaces import ISecurityPolicy

from ..db import utcnow
from ..ops.access import (
    HEADER,
    NEW_IDS,
    access_log,
    log_request,
    sane_id,
    with_request_id,
)
from ..ops.headers import security_headers
from ..ops.metrics import METRICS
from ..ops.params import parse_id
from ..security import client_address
from ..singletons import (
    ACTIVITY,
    DEDUPLICATOR,
    INGEST_LIMITS,
    INGEST_WRITER,
    TRUSTED_PROXIES,
)
from .admission import JSON, admit
from .dedup import ClaimPending
from .schemas import ReadingIn, fingerprint
from .services import IngestService
from .views import DUPLICATE_BODY

INGEST_PATH = "/rssi_readings"
ROUTE = "ingest.readings"

log = logging.getLogger(__name__)


def _no_session():
    # Only late readings need the request's session; the filter takes none.
    raise RuntimeError("the ingest fast path stores live readings only")


class IngestFastPath:
    """The WSGI application: ``app`` (the Pyramid router) behind the filter."""

    def __init__(self, app):
        self.app = app
        self.registry = app.registry
        self.policy = app.registry.getUtility(ISecurityPolicy)
        self.proxies = app.registry[TRUSTED_PROXIES]
        self.limits = app.registry[INGEST_LIMITS]
        self.deduplicator = app.registry[DEDUPLICATOR]
        self.tracker = app.registry[ACTIVITY]
        self.metrics = app.registry[METRICS]
        writer = app.registry[INGEST_WRITER]
        # The view's service, as it is for a live reading with no session
        # open: claim, group writer, claim confirmed or released. None when
        # group commit is off (readings are then stored in the request's
        # transaction, which only the whole way has).
        self.service = (
            IngestService(
                session=_no_session,
                deduplicator=self.deduplicator,
                tracker=self.tracker,
                transaction_manager=None,
                limits=self.limits,
                writer=writer,
                metrics=self.metrics,
            )
            if writer is not None
            else None
        )
        # The headers the view's responses get from webob and the security
        # headers tween (ops.headers decides which), built once.
        self._headers = [
            ("Content-Type", JSON),
            *security_headers(INGEST_PATH, https=False),
        ]
        self._https_headers = [
            ("Content-Type", JSON),
            *security_headers(INGEST_PATH, https=True),
        ]

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO") == (
            INGEST_PATH
        ):
            start = time.perf_counter()
            answer = self._answer(environ)
            if answer is not None:
                status, body, gateway, known, *extra = answer
                # ops.access.request_id, without keeping it: nothing follows.
                rid = environ.get("HTTP_X_REQUEST_ID")
                if rid is None or not sane_id(rid):
                    rid = next(NEW_IDS)
                if status[0] != "2":
                    # Every error body says which request it answers.
                    body = with_request_id(body, rid)
                https = environ["wsgi.url_scheme"] == "https"
                headers = list(self._https_headers if https else self._headers)
                headers.extend(extra)
                headers.append(("Content-Length", str(len(body))))
                headers.append((HEADER, rid))
                start_response(status, headers)
                # What the request tween does for the whole way.
                code = int(status[:3])
                seconds = time.perf_counter() - start
                self.metrics.ingest_answer(ROUTE, code, seconds, gateway, known)
                if access_log.isEnabledFor(logging.INFO):
                    who = ("gateway", gateway)
                    log_request("POST", ROUTE, code, seconds, rid, who)
                return [body]
        return self.app(environ, start_response)

    def _answer(self, environ) -> tuple | None:
        """The status and body the view would give, the reading's gateway,
        whether it was a duplicate known here (which no service counted),
        and any headers; or None: not sure."""
        posted = self._live_reading(environ)
        if posted is None:
            return None
        item, client_ip = posted
        key = fingerprint(item.badge_id, item.beacons)
        # What this process knows answers most repeats. Else the service's
        # claim asks Redis (SET NX GET) and refuses a repeat in the same
        # round trip; without the service, a GET (no claim) is all we may do.
        known = (
            self.deduplicator.known_here(key)
            if self.service is not None
            else self.deduplicator.known_duplicate(key)
        )
        if known:
            self.tracker.record(
                item.pi_id, item.badge_id, client_ip, utcnow(), duplicate=True
            )
            return (*DUPLICATE, item.pi_id, True)
        if self.service is None:
            return None
        try:
            result = self.service.ingest_one(item, client_ip)
        except ClaimPending as pending:
            # Another request's claim, still uncommitted after the wait: the
            # whole way would wait again and answer this same 503.
            status, body, retry_after = pending_answer(pending)
            return status, body, item.pi_id, False, retry_after
        except Exception:
            # Not stored, and the claim released (IngestService): the whole
            # way tries again and answers (and logs) a failure as it does
            # any, with one attempt fewer (retry_attempts).
            log.debug(
                "could not store early; the request goes the whole way", exc_info=True
            )
            environ[TRIED] = True
            return None
        # The service counted its reading (created, or duplicate).
        if result.status == "duplicate":
            return (*DUPLICATE, item.pi_id, False)
        return "201 Created", orjson.dumps(result.reading), item.pi_id, False

    def _live_reading(self, environ) -> tuple[ReadingIn, str | None] | None:
        """A valid live reading this caller may post, and the caller's address:
        what ``admit`` lets in, as the view would; None for anything else."""
        # A longer body is a batch, or a reading the whole way refuses (413).
        length = parse_id(environ.get("CONTENT_LENGTH"), self.limits.max_body_bytes, 1)
        if length is None:
            return None
        client_ip = client_address(environ, self.proxies)
        grant = self.policy.ingest_grant_without_database(environ, client_ip)
        if grant is None:
            return None

        def read() -> bytes:
            body = environ["wsgi.input"].read(length)
            # Put the body back for the whole way, seekable as webob wants
            # it (pyramid_retry replays it).
            environ["wsgi.input"] = io.BytesIO(body)
            environ["webob.is_body_seekable"] = True
            if len(body) != length:
                raise ShortBody
            return body

        try:
            item = admit(
                grant, environ.get("CONTENT_TYPE", ""), length, read, self.limits
            )
        except Exception:
            # Refused (the whole way answers why) or a short body; or a bug
            # in validation (such as an OverflowError pydantic did not turn
            # into a field error): raised from here it would escape the
            # whole WSGI app, to the server's plain-text 500 without our
            # headers or log. The whole way admits with the same function,
            # meets the same exception and answers it as any bug: a JSON
            # 500 with the security headers, logged with its traceback there
            # (so not here too).
            return None
        # A live post only: a batch, or an observed_at (bounds to check with
        # the clock, and maybe the database), goes the whole way.
        if isinstance(item, list) or item.observed_at is not None:
            return None
        return item, client_ip


class ShortBody(Exception):
    """Fewer bytes came than Content-Length said."""


DUPLICATE = ("409 Conflict", DUPLICATE_BODY)


def pending_answer(pending: ClaimPending) -> tuple[str, bytes, tuple[str, str]]:
    """ClaimPending as the whole way's error view renders it (JSON)."""
    retry_after = ("Retry-After", pending.headers["Retry-After"])
    return "503 Service Unavailable", orjson.dumps(pending.as_json()), retry_after


TRIED = "stethoscope.ingest.fast_path_tried"


def retry_attempts(configured=None):
    """pyramid_retry's ``retry.activate_hook``: a reading the fast path failed
    to store has had its first attempt, so a failing database does not keep
    a gateway waiting one attempt longer than ``retry.attempts`` says.

    ``configured`` is a hook set before this one (``retry.activate_hook`` in
    the settings): it still decides the attempts, one fewer for such a
    reading.
    """

    def activate(request) -> int | None:
        attempts = configured(request) if configured is not None else None
        if TRIED not in request.environ:
            return attempts
        if attempts is None:
            attempts = request.registry.settings["retry.attempts"]
        return max(1, attempts - 1)

    return activate
