"""Logging in and out."""

from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPSeeOther, HTTPTooManyRequests

from ..forms import redirect
from ..ops.errors import error_response
from ..ops.params import form_text
from ..pages import page
from ..permissions import LOGGED_IN, PUBLIC
from ..security import SESSION_TOKEN_KEY
from .services import CONTROL, LoginService

LOGIN = "stethoscope:accounts/templates/login.jinja2"


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


@page("accounts.login", PUBLIC, LOGIN)
def login_form(request):
    return {"next": _safe_next(request.GET.get("next")), "username": "", "error": None}


@page("accounts.login", PUBLIC, LOGIN, request_method="POST")
def login(request):
    username = form_text(request.POST, "username")[:64].strip().lower()
    password = form_text(request.POST, "password")[:1024]
    next_url = _safe_next(form_text(request.POST, "next"))
    attempt = request.find_service(LoginService).log_in(
        username, password, request.client_ip, request.user_agent
    )
    if attempt.retry_after:
        error = HTTPTooManyRequests(
            f"too many failed logins; try again in {attempt.retry_after} s"
        )
        error.headers["Retry-After"] = str(attempt.retry_after)
        # Returned, not raised: a raised error would abort the transaction
        # and, with it, the audit event just recorded.
        return error_response(request, error)
    if attempt.token is None:
        request.response.status = 401
        return {
            "next": next_url,
            "username": username,
            "error": "Wrong username or password.",
        }
    # A new session id and CSRF token at login: whatever an attacker may have
    # planted in the anonymous session is worth nothing now.
    request.session.invalidate()
    request.session[SESSION_TOKEN_KEY] = attempt.token
    request.session.new_csrf_token()
    return HTTPSeeOther(location=next_url)


@page("accounts.logout", LOGGED_IN, LOGIN, request_method="POST")
def logout(request):
    request.find_service(LoginService).log_out(
        request.session.get(SESSION_TOKEN_KEY), request.authenticated_userid
    )
    request.session.invalidate()
    return redirect(request, "accounts.login")
