"""Logging in and out."""

from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPSeeOther, HTTPTooManyRequests
from pyramid.view import view_config

from ..audit.services import record
from ..ops.errors import error_response
from ..security import LOGGED_IN, PUBLIC, SESSION_TOKEN_KEY
from .services import UserService


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if (
        parts.scheme
        or parts.netloc
        or not value.startswith("/")
        or value.startswith("//")
    ):
        return "/"
    return value


@view_config(
    route_name="accounts.login",
    request_method="GET",
    renderer="stethoscope:accounts/templates/login.jinja2",
    permission=PUBLIC,
)
def login_form(request):
    return {"next": _safe_next(request.GET.get("next")), "username": "", "error": None}


@view_config(
    route_name="accounts.login",
    request_method="POST",
    renderer="stethoscope:accounts/templates/login.jinja2",
    permission=PUBLIC,
)
def login(request):
    username = request.POST.get("username", "")[:64].strip().lower()
    password = request.POST.get("password", "")[:1024]
    next_url = _safe_next(request.POST.get("next"))
    throttle = request.registry["stethoscope.login_throttle"]
    ip = request.client_ip

    retry_after = throttle.retry_after(username, ip)
    if retry_after:
        record(request, "login.throttled", target=username, actor=username or "-")
        error = HTTPTooManyRequests(
            f"too many failed logins; try again in {retry_after} s"
        )
        error.headers["Retry-After"] = str(retry_after)
        # Returned, not raised: a raised error would abort the transaction
        # and, with it, the audit row just written.
        return error_response(request, error)

    user = request.find_service(UserService).authenticate(username, password)
    if user is None:
        throttle.failed(username, ip)
        record(request, "login.failure", target=username, actor=username or "-")
        request.response.status = 401
        return {
            "next": next_url,
            "username": username,
            "error": "Wrong username or password.",
        }

    throttle.succeeded(username)
    # A new session id and CSRF token at login: whatever an attacker may have
    # planted in the anonymous session is worth nothing now.
    request.session.invalidate()
    sessions = request.registry["stethoscope.sessions"]
    # Logins are rare: a good moment to forget sessions that have expired.
    sessions.purge_expired(request.db)
    request.session[SESSION_TOKEN_KEY] = sessions.start(
        request.db, user, ip, request.user_agent
    )
    request.session.new_csrf_token()
    record(
        request,
        "login.success",
        target=user.username,
        actor=user.username,
        actor_type="user",
    )
    return HTTPSeeOther(location=next_url)


@view_config(route_name="accounts.logout", request_method="POST", permission=LOGGED_IN)
def logout(request):
    token = request.session.get(SESSION_TOKEN_KEY)
    if token:
        request.registry["stethoscope.sessions"].end(request.db, token)
    record(request, "logout", target=request.authenticated_userid)
    request.session.invalidate()
    return HTTPSeeOther(location=request.route_url("accounts.login"))
