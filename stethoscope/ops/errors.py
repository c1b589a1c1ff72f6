"""Every error becomes a clear response: JSON for machines, a page for people.

Status codes are instructions to gateways: they retry 5xx and 429 and drop
4xx. So a database that is down or locked answers 503 with Retry-After
(pyramid_retry has already replayed a transient failure before we get
here), and only a bug is a 500.
"""

import logging
from urllib.parse import unquote_to_bytes

from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken, PredicateMismatch
from pyramid.httpexceptions import (
    HTTPException,
    HTTPForbidden,
    HTTPInternalServerError,
    HTTPMethodNotAllowed,
    HTTPNotFound,
    HTTPSeeOther,
    HTTPServiceUnavailable,
    HTTPUnauthorized,
    status_map,
)
from pyramid.interfaces import IRootFactory, IRoutesMapper
from pyramid.predicates import RequestMethodPredicate
from pyramid.renderers import render_to_response
from pyramid.traversal import DefaultRootFactory
from pyramid.view import exception_view_config, forbidden_view_config
from pyramid_retry import is_error_retryable
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from transaction.interfaces import TransientError

from ..errors import FieldError, Invalid, ServiceError
from ..permissions import INGEST
from ..singletons import ERROR_NOTIFIER
from .access import request_id

log = logging.getLogger(__name__)


def wants_html(request) -> bool:
    offers = request.accept.acceptable_offers(["application/json", "text/html"])
    return bool(offers) and offers[0][0] == "text/html"


def error_response(request, http_error: HTTPException, message: str | None = None):
    """Render ``http_error`` (its status and headers) as JSON or as a page."""
    message = message or http_error.detail or http_error.explanation
    name = http_error.title.lower().replace(" ", "_").replace("-", "_")
    rid = request_id(request.environ)
    if wants_html(request):
        response = render_to_response(
            "stethoscope:dashboard/templates/error.jinja2",
            {
                "status": http_error.code,
                "title": http_error.title,
                "message": message,
                "request_id": rid,
            },
            request=request,
        )
    else:
        response = render_to_response(
            "json",
            {
                "status": http_error.code,
                "error": name,
                "message": message,
                "request_id": rid,
            },
            request=request,
        )
    response.status = http_error.status
    for header in ("Allow", "Retry-After", "WWW-Authenticate", "Location"):
        if header in http_error.headers:
            response.headers[header] = http_error.headers[header]
    return response


def service_error_response(request, exc: ServiceError):
    """``exc`` (one of stethoscope.errors) as its JSON body, or as a page."""
    rid = request_id(request.environ)
    if wants_html(request):
        response = render_to_response(
            "stethoscope:dashboard/templates/error.jinja2",
            {
                "status": exc.status,
                "title": status_map[exc.status].title,
                "message": exc.message,
                "request_id": rid,
            },
            request=request,
        )
    else:
        response = render_to_response(
            "json", {**exc.as_json(), "request_id": rid}, request=request
        )
    response.status = exc.status
    response.headers.update(exc.headers)
    return response


def invalid_response(request, errors: list[FieldError]):
    """400 ``invalid`` naming the fields at fault."""
    return service_error_response(request, Invalid(errors))


@exception_view_config(HTTPException)
def http_error(exc, request):
    return error_response(request, exc)


@exception_view_config(ServiceError)
def service_error(exc, request):
    return service_error_response(request, exc)


def _undecodable(environ) -> str | None:
    """Which part of the URL is not UTF-8: "path", "query_string" or None.

    WSGI hands both over as bytes in latin-1 strings; webob decodes them
    as UTF-8 when a view (or the router) first reads them.
    """
    try:
        environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        return "path"
    try:
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        unquote_to_bytes(query).decode("utf-8")
    except UnicodeError:
        return "query_string"
    return None


@exception_view_config(UnicodeDecodeError)
def undecodable_url(exc, request):
    """400 for a path or query string that is not UTF-8 once unquoted.

    The router raises (pyramid's URLDecodeError) for the path, request.GET
    for the query string: answered here once rather than in every view.
    Form bodies never get here: webob decodes them with replacement
    characters, which the fields' own checks then refuse.
    """
    environ = request.environ
    part = _undecodable(environ)
    if part is None:
        return unexpected_error(exc, request)
    if part == "path" and not hasattr(request, "context"):
        # The router raised before it found a context, of which the page's
        # layout asks permissions.
        root_factory = request.registry.queryUtility(
            IRootFactory, default=DefaultRootFactory
        )
        request.context = root_factory(request)
    return invalid_response(
        request, [FieldError(part, "must be UTF-8 once percent-decoded")]
    )


@forbidden_view_config()
def forbidden(exc, request):
    """401 for whoever is not logged in (a login page for a browser), else 403."""
    if getattr(exc, "result", None) is None:
        # Raised by a view with its own reason, not a permission check.
        return error_response(request, exc)
    if request.authenticated_userid is None:
        if wants_html(request) and request.method == "GET":
            login = request.route_url(
                "accounts.login", _query={"next": request.path_qs}
            )
            return HTTPSeeOther(location=login)
        error = HTTPUnauthorized("log in, or send a valid gateway token")
        error.headers["WWW-Authenticate"] = 'Bearer realm="stethoscope"'
        return error_response(request, error)
    if exc.result.permission == INGEST:
        message = "posting readings needs a gateway token"
    else:
        message = "your role does not allow this"
    return error_response(request, HTTPForbidden(message))


@exception_view_config(BadCSRFToken)
@exception_view_config(BadCSRFOrigin)
def bad_csrf(exc, request):
    # Nothing was done; a form older than the login (or from another site)
    # gets a clear refusal, never a silent success.
    message = "missing or invalid CSRF token; reload the page and try again"
    if isinstance(exc, BadCSRFOrigin):
        message = "the request came from another site"
    return error_response(request, HTTPForbidden(message))


@exception_view_config(HTTPNotFound)
def not_found(exc, request):
    """404, or 405 when the path exists but not for this method.

    Covers both ways a method is refused: a route with a request_method
    predicate that does not match (no route matches: plain 404 from the
    router) and a view predicate that does not (PredicateMismatch).
    """
    allowed = _allowed_methods(request)
    if allowed and request.method not in allowed:
        error = HTTPMethodNotAllowed(f"{request.method} is not allowed here")
        error.headers["Allow"] = ", ".join(sorted(allowed))
        return error_response(request, error)
    # When no route matched, Pyramid's detail is the bare path; when no
    # view's predicates did, it names the view: ours, not the client's
    # business.
    if (
        isinstance(exc, PredicateMismatch)
        or not exc.detail
        or exc.detail == request.path_info
    ):
        return error_response(request, exc, f"nothing here: {request.path}")
    return error_response(request, exc)


def _allowed_methods(request) -> set[str]:
    """The methods the router would take to a view for this path: those of
    routes that match with their own method predicate, up to the first
    matching route without one (the router stops there, whatever the
    method), whose views' methods count."""
    methods: set[str] = set()
    mapper = request.registry.getUtility(IRoutesMapper)
    for route in mapper.get_routes():
        if route.match(request.path_info) is None:
            continue
        route_methods = [
            predicate.val
            for predicate in route.predicates
            if isinstance(predicate, RequestMethodPredicate)
        ]
        if route_methods:
            methods.update(*route_methods)
            continue
        methods.update(_view_methods(request.registry, route.name))
        break
    return methods


def _view_methods(registry, route_name: str) -> set[str]:
    methods = set()
    for view in registry.introspector.get_category("views") or []:
        intr = view["introspectable"]
        if intr.get("route_name") == route_name and intr.get("request_methods"):
            request_methods = intr["request_methods"]
            if isinstance(request_methods, str):
                request_methods = [request_methods]
            methods.update(request_methods)
    if "GET" in methods:
        methods.add("HEAD")
    return methods


@exception_view_config(OperationalError)
@exception_view_config(InterfaceError)
@exception_view_config(DisconnectionError)
@exception_view_config(PoolTimeoutError)
@exception_view_config(TransientError)
def database_unavailable(exc, request):
    # pyramid_retry discards this response and replays the request while it
    # has attempts left, for a retryable error; the answer that reaches the
    # gateway is logged (a full disk is not retryable: its first answer).
    if not is_error_retryable(request, exc):
        log.warning("database unavailable: %s", exc)
    retry_after = request.registry.settings["stethoscope.db.retry_after_s"]
    error = HTTPServiceUnavailable("the database is unavailable; retry later")
    error.headers["Retry-After"] = str(retry_after)
    return error_response(request, error)


@exception_view_config(Exception)
def unexpected_error(exc, request):
    """A bug: 500 (JSON, or a page), logged with its traceback and the
    request id, and told to the webhook (ops.notifications: a few at a
    time, never the exception's text, which may hold residents' data)."""
    # The raw path, quoted: request.path decodes it and may raise again,
    # and a decoded newline would forge a line of the log.
    path = request.environ.get("PATH_INFO", "")
    rid = request_id(request.environ)
    route = request.matched_route.name if request.matched_route else "unmatched"
    log.error(
        "unexpected error on %s %r (request %s)",
        request.method,
        path,
        rid,
        exc_info=exc,
        extra={"fields": {"request_id": rid, "route": route}},
    )
    request.registry[ERROR_NOTIFIER].report(
        exc, route, f"{request.method} {path!r}", rid
    )
    return error_response(request, HTTPInternalServerError("internal error"))
