"""Logging in and out."""

import re
from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPSeeOther, HTTPTooManyRequests

from ..audit.services import record
from ..forms import redirect
from ..ops.errors import error_response
from ..ops.params import form_text
from ..pages import page
from ..permissions import LOGGED_IN, PUBLIC
from ..security import SESSION_TOKEN_KEY
from .services import USERNAME, UserService

LOGIN = "stethoscope:accounts/templates/login.jinja2"
# C0 and C1 control characters (NUL included) and DEL.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
        # Browsers read "\" as "/" and drop tabs and newlines: "/\evil.example"
        # and "/\t/evil.example" would both lead off the site.
        or "\\" in value
        or CONTROL.search(value)
    ):
        return "/"
    return value


def _loggable(username: str) -> str:
    """``username`` as the audit log may keep it: control characters escaped
    (PostgreSQL refuses a NUL in text, and a newline would forge a line)."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", username)


@page("accounts.login", PUBLIC, LOGIN)
def login_form(request):
    return {"next": _safe_next(request.GET.get("next")), "username": "", "error": None}


@page("accounts.login", PUBLIC, LOGIN, request_method="POST")
def login(request):
    username = form_text(request.POST, "username")[:64].strip().lower()
    password = form_text(request.POST, "password")[:1024]
    next_url = _safe_next(form_text(request.POST, "next"))
    throttle = request.registry["stethoscope.login_throttle"]
    ip = request.client_ip

    # Reserved before the password is hashed (LoginThrottle): simultaneous
    # guesses cannot all pass a check made before any of them is counted.
    retry_after = throttle.reserve(username, ip)
    if retry_after:
        logged = _loggable(username)
        record(request, "login.throttled", target=logged, actor=logged or "-")
        error = HTTPTooManyRequests(
            f"too many failed logins; try again in {retry_after} s"
        )
        error.headers["Retry-After"] = str(retry_after)
        # Returned, not raised: a raised error would abort the transaction
        # and, with it, the audit row just written.
        return error_response(request, error)

    # A name no account can have is a failed login without a look-up (a NUL
    # in it would make PostgreSQL refuse the query).
    try:
        user = (
            request.find_service(UserService).authenticate(username, password)
            if USERNAME.fullmatch(username)
            else None
        )
    except BaseException:
        throttle.cancel(username, ip)
        raise
    if user is None:
        # The reservation stands: it is this failure's count.
        logged = _loggable(username)
        record(request, "login.failure", target=logged, actor=logged or "-")
        request.response.status = 401
        return {
            "next": next_url,
            "username": username,
            "error": "Wrong username or password.",
        }

    throttle.succeeded(username, ip)
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


@page("accounts.logout", LOGGED_IN, LOGIN, request_method="POST")
def logout(request):
    token = request.session.get(SESSION_TOKEN_KEY)
    if token:
        request.registry["stethoscope.sessions"].end(request.db, token)
    record(request, "logout", target=request.authenticated_userid)
    request.session.invalidate()
    return redirect(request, "accounts.login")
