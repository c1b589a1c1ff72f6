"""Every error becomes a clear response: JSON for machines, a page for people.

Status codes are instructions to gateways: they retry 5xx and 429 and drop
4xx. So a database that is down or locked answers 503 with Retry-After
(pyramid_retry has already replayed a transient failure before we get
here), and only a bug is a 500.
"""

import logging

from pyramid.exceptions import PredicateMismatch
from pyramid.httpexceptions import (
    HTTPException,
    HTTPInternalServerError,
    HTTPMethodNotAllowed,
    HTTPNotFound,
    HTTPServiceUnavailable,
)
from pyramid.renderers import render_to_response
from pyramid.view import exception_view_config
from pyramid_retry import is_last_attempt
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from transaction.interfaces import TransientError

log = logging.getLogger(__name__)


def wants_html(request) -> bool:
    offers = request.accept.acceptable_offers(["application/json", "text/html"])
    return bool(offers) and offers[0][0] == "text/html"


def error_response(request, http_error: HTTPException, message: str | None = None):
    """Render ``http_error`` (its status and headers) as JSON or as a page."""
    message = message or http_error.detail or http_error.explanation
    name = http_error.title.lower().replace(" ", "_").replace("-", "_")
    if wants_html(request):
        response = render_to_response(
            "stethoscope:dashboard/templates/error.jinja2",
            {"status": http_error.code, "title": http_error.title, "message": message},
            request=request,
        )
    else:
        response = render_to_response(
            "json",
            {"status": http_error.code, "error": name, "message": message},
            request=request,
        )
    response.status = http_error.status
    for header in ("Allow", "Retry-After", "WWW-Authenticate", "Location"):
        if header in http_error.headers:
            response.headers[header] = http_error.headers[header]
    return response


@exception_view_config(HTTPException)
def http_error(exc, request):
    return error_response(request, exc)


@exception_view_config(HTTPNotFound)
def not_found(exc, request):
    # When no route matched, Pyramid's detail is the bare path.
    if not exc.detail or exc.detail == request.path_info:
        return error_response(request, exc, f"nothing here: {request.path}")
    return error_response(request, exc)


@exception_view_config(PredicateMismatch)
def wrong_method(exc, request):
    # The route matched but no view takes this method: that is a 405.
    allowed = _allowed_methods(request) if request.matched_route else []
    if not allowed or request.method in allowed:
        return not_found(exc, request)
    error = HTTPMethodNotAllowed(f"{request.method} is not allowed here")
    error.headers["Allow"] = ", ".join(allowed)
    return error_response(request, error)


def _allowed_methods(request) -> list[str]:
    introspector = request.registry.introspector
    route_name = request.matched_route.name
    methods = set()
    for view in introspector.get_category("views") or []:
        intr = view["introspectable"]
        if intr.get("route_name") == route_name and intr.get("request_methods"):
            request_methods = intr["request_methods"]
            if isinstance(request_methods, str):
                request_methods = [request_methods]
            methods.update(request_methods)
    return sorted(methods)


@exception_view_config(OperationalError)
@exception_view_config(InterfaceError)
@exception_view_config(DisconnectionError)
@exception_view_config(PoolTimeoutError)
@exception_view_config(TransientError)
def database_unavailable(exc, request):
    # pyramid_retry discards this response and replays the request while it
    # has attempts left; only the last attempt's answer reaches the gateway.
    if is_last_attempt(request):
        log.warning("database unavailable: %s", exc)
    retry_after = request.registry.settings["stethoscope.db.retry_after_s"]
    error = HTTPServiceUnavailable("the database is unavailable; retry later")
    error.headers["Retry-After"] = str(retry_after)
    return error_response(request, error)


@exception_view_config(Exception)
def unexpected_error(exc, request):
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(request, HTTPInternalServerError("internal error"))
