"""Admin pages: staff accounts and their API tokens, gateway tokens and the
audit log.

Every change is an HTML form POSTed with the session's CSRF token (Pyramid
checks it on every unsafe method), answered by a redirect back to the page
with a flash message (POST-redirect-GET); the services record each change
in the audit log in the same transaction as the change itself. A change the
services refuse re-renders the form with the reason next to the field,
status 400, and nothing written.

The one exception to POST-redirect-GET is a new token (a gateway's or a
user's): its plaintext is rendered straight into the POST's response, the
only place it ever exists outside its holder. A redirect would have to carry
it in the URL or the session cookie, and then it would be stored.
"""

import datetime
import json
import re

from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound

from ..accounts.models import Role, User
from ..accounts.services import USERNAME, AccountError, UserService
from ..accounts.tokens import MAX_EXPIRY_DAYS, UserTokenService
from ..audit.services import AuditService
from ..db import utcnow
from ..errors import NotFound, ValidationError
from ..forms import redirect, refuse
from ..labels.services import LabelService
from ..learning.services import ModelService
from ..ops.errors import wants_html
from ..ops.params import form_text, parse_id
from ..pages import page
from ..permissions import ADMIN
from ..registry.services import RegistryService
from ..registry.tokens import GatewayTokenService

# Rows per page of the audit log.
AUDIT_PAGE_ROWS = 50
# The audit filters are matched against stored values of at most 64
# characters; actions are dotted lower-case words (login.success, user.role).
AUDIT_ACTION = re.compile(r"[a-z0-9._-]{1,64}")
AUDIT_ACTOR = re.compile(r"[!-~]{1,64}")
# audit_events.id is a BIGINT on PostgreSQL.
MAX_EVENT_ID = 2**63 - 1
# gateway_tokens.id and user_tokens.id are INTEGERs: a larger id cannot exist.
MAX_TOKEN_ID = 2**31 - 1

TEMPLATES = "stethoscope:admin/templates/"
HOME = TEMPLATES + "home.jinja2"
USERS = TEMPLATES + "users.jinja2"
USER = TEMPLATES + "user.jinja2"
TOKENS = TEMPLATES + "tokens.jinja2"
AUDIT = TEMPLATES + "audit.jinja2"


def when(moment: datetime.datetime | None) -> str:
    """``2024-05-01 12:34:56 UTC``, or an empty string for no time at all."""
    if moment is None:
        return ""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def compact_json(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _page(request, **values) -> dict:
    """What every admin page's template gets besides its own values."""
    return {"flashes": request.session.pop_flash(), "when": when, **values}


# ---- the landing page --------------------------------------------------------


@page("admin.home", ADMIN, HOME)
def admin_home(request):
    """Every admin area, with what it holds: counts a glance can check."""
    users = request.find_service(UserService).list()
    tokens = request.find_service(GatewayTokenService).list()
    house = request.find_service(RegistryService)
    labels = request.find_service(LabelService)
    models = request.find_service(ModelService)
    latest = request.find_service(AuditService).page(limit=1)
    versions = models.versions()
    return _page(
        request,
        users=len(users),
        disabled=sum(user.disabled for user in users),
        live_tokens=sum(token.revoked_at is None for token in tokens),
        sites=len(house.sites()),
        rooms=len(house.rooms()),
        beacons=len(house.beacons()),
        runs=labels.page(limit=1)[1],
        open_runs=labels.page(status="open", limit=1)[1],
        versions=len(versions),
        active_sites=sum(
            models.active(site_id) is not None
            for site_id in {version.site_id for version in versions}
        ),
        latest_event=latest[0] if latest else None,
    )


# ---- users -------------------------------------------------------------------


def _users_page(request, *, form=None, errors=None) -> dict:
    return _page(
        request,
        users=request.find_service(UserService).list(),
        roles=list(Role),
        form=form or {"username": "", "role": Role.VIEWER.value},
        errors=errors or {},
    )


@page("admin.users", ADMIN, USERS)
def users_page(request):
    return _users_page(request)


@page("admin.users", ADMIN, USERS, request_method="POST")
def create_user(request):
    username = form_text(request.POST, "username")[:200].strip().lower()
    role = form_text(request.POST, "role")
    password = form_text(request.POST, "password")
    confirm = form_text(request.POST, "confirm")
    form = {"username": username, "role": role}
    try:
        if password != confirm:
            raise AccountError("confirm", "the two passwords differ")
        user = request.find_service(UserService).create(username, password, role)
    except AccountError as exc:
        refuse(request)
        return _users_page(request, form=form, errors={exc.field: exc.message})
    request.session.flash(f"Added {user.username} ({user.role.value}).")
    return redirect(request, "admin.users")


def _user_or_404(request) -> User:
    username = request.matchdict["username"]
    # A name no account can have is not looked up: PostgreSQL refuses a NUL
    # in a query's text with an error, not an empty answer.
    user = (
        request.find_service(UserService).get(username)
        if USERNAME.fullmatch(username)
        else None
    )
    if user is None:
        raise HTTPNotFound(f"no user {username[:64]!r}")
    return user


def _user_page(request, user: User, *, errors=None, expires="") -> dict:
    return _page(
        request,
        user=user,
        roles=list(Role),
        errors=errors or {},
        tokens=request.find_service(UserTokenService).list(user),
        now=utcnow(),
        expires=expires,
        max_expiry_days=MAX_EXPIRY_DAYS,
    )


@page("admin.user", ADMIN, USER)
def user_page(request):
    return _user_page(request, _user_or_404(request))


def _change_role(request, service: UserService, user: User):
    if not service.set_role(user, form_text(request.POST, "role")):
        return None
    return f"{user.username} is now {user.role.value}; their sessions have ended."


def _change_password(request, service: UserService, user: User):
    password = form_text(request.POST, "password")
    if password != form_text(request.POST, "confirm"):
        raise AccountError("confirm", "the two passwords differ")
    service.set_password(user, password)
    return f"Set a new password for {user.username}; their sessions have ended."


def _change_enabled(request, service: UserService, user: User):
    disable = request.POST.get("enabled") == "false"
    if not service.set_disabled(user, disable):
        return None
    if disable:
        return f"Disabled {user.username}; their sessions have ended."
    return f"Enabled {user.username}."


def _end_sessions(request, service: UserService, user: User):
    service.end_sessions(user)
    return f"Ended every session of {user.username}."


USER_CHANGES = {
    "role": _change_role,
    "password": _change_password,
    "enabled": _change_enabled,
    "sessions": _end_sessions,
}


@page("admin.user", ADMIN, USER, request_method="POST")
def change_user(request):
    user = _user_or_404(request)
    change = USER_CHANGES.get(request.POST.get("change", ""))
    if change is None:
        raise HTTPBadRequest("unknown change; use the forms on the user's page")
    service = request.find_service(UserService)
    try:
        message = change(request, service, user)
    except AccountError as exc:
        refuse(request)
        errors = {request.POST["change"]: {exc.field: exc.message}}
        return _user_page(request, user, errors=errors)
    request.session.flash(message or "Nothing to change.")
    # A change to one's own account may have ended this very session: the
    # redirect then lands on the login page, as it should.
    return redirect(request, "admin.user", username=user.username)


# ---- users' API tokens -------------------------------------------------------


@page("admin.user.tokens", ADMIN, USER, request_method="POST")
def create_user_token(request):
    user = _user_or_404(request)
    expires = form_text(request.POST, "expires")[:20].strip()
    try:
        days = None
        if expires:
            days = parse_id(expires, MAX_EXPIRY_DAYS, minimum=1)
            if days is None:
                raise AccountError(
                    "expires",
                    f"a whole number of days from 1 to {MAX_EXPIRY_DAYS}, "
                    "or empty for never",
                )
        token, row = request.find_service(UserTokenService).create(
            user, request.authenticated_userid, expires_days=days
        )
    except AccountError as exc:
        refuse(request)
        errors = {"token": {exc.field: exc.message}}
        return _user_page(request, user, errors=errors, expires=expires)
    # Rendered here and nowhere else: see the module docstring.
    request.override_renderer = TEMPLATES + "user_token_created.jinja2"
    request.response.status = 201
    return _page(request, token=token, row=row, user=user)


@page("admin.user.token", ADMIN, USER, request_method="POST")
def revoke_user_token(request):
    user = _user_or_404(request)
    raw = request.matchdict["token_id"]
    token_id = parse_id(raw, MAX_TOKEN_ID)
    if token_id is None:
        raise HTTPNotFound(f"no token {raw[:20]} of {user.username}")
    service = request.find_service(UserTokenService)
    try:
        row, revoked = service.revoke(token_id, request.authenticated_userid, user=user)
    except AccountError:
        raise HTTPNotFound(f"no token {token_id} of {user.username}") from None
    if revoked:
        request.session.flash(f"Revoked token {row.prefix}… of {user.username}.")
    else:
        request.session.flash(f"Token {row.prefix}… was already revoked.")
    return redirect(request, "admin.user", username=user.username)


# ---- gateway tokens ----------------------------------------------------------


def _tokens_page(request, *, gateway_id="", errors=None) -> dict:
    tokens = request.find_service(GatewayTokenService).list()
    live = [token for token in tokens if token.revoked_at is None]
    revoked = sorted(
        (token for token in tokens if token.revoked_at is not None),
        key=lambda token: token.revoked_at,
        reverse=True,
    )
    return _page(
        request,
        live=live,
        revoked=revoked,
        gateway_id=gateway_id,
        errors=errors or {},
    )


@page("admin.tokens", ADMIN, TOKENS)
def tokens_page(request):
    return _tokens_page(request)


@page("admin.tokens", ADMIN, TOKENS, request_method="POST")
def create_token(request):
    gateway_id = form_text(request.POST, "gateway_id")[:200].strip()
    service = request.find_service(GatewayTokenService)
    try:
        token, row = service.create(gateway_id, request.authenticated_userid)
    except ValidationError as exc:
        refuse(request)
        return _tokens_page(
            request, gateway_id=gateway_id, errors={exc.field: exc.errors[0].message}
        )
    # Rendered here and nowhere else: see the module docstring. The headers
    # tween marks every page Cache-Control: no-store.
    request.override_renderer = TEMPLATES + "token_created.jinja2"
    request.response.status = 201
    others = [
        other
        for other in service.list(row.gateway_id, include_revoked=False)
        if other.id != row.id
    ]
    return _page(request, token=token, row=row, others=others)


@page("admin.token", ADMIN, TOKENS, request_method="POST")
def revoke_token(request):
    service = request.find_service(GatewayTokenService)
    raw = request.matchdict["token_id"]
    token_id = parse_id(raw, MAX_TOKEN_ID)
    if token_id is None:
        raise HTTPNotFound(f"no gateway token {raw[:20]}")
    try:
        row, revoked = service.revoke(token_id, request.authenticated_userid)
    except NotFound:
        raise HTTPNotFound(f"no gateway token {raw}") from None
    if revoked:
        request.session.flash(
            f"Revoked token {row.prefix}… of gateway {row.gateway_id}."
        )
    else:
        request.session.flash(f"Token {row.prefix}… was already revoked.")
    return redirect(request, "admin.tokens")


# ---- audit log ---------------------------------------------------------------


def _audit_filters(request) -> tuple[dict, dict]:
    """The page's GET parameters, checked; and the reason for each refused."""
    action = request.GET.get("action", "").strip()
    actor = request.GET.get("actor", "").strip()
    before = request.GET.get("before", "").strip()
    errors = {}
    if action and not AUDIT_ACTION.fullmatch(action):
        errors["action"] = "up to 64 lower-case letters, digits, '.', '_' or '-'"
    if actor and not AUDIT_ACTOR.fullmatch(actor):
        errors["actor"] = "up to 64 printable characters, no spaces"
    before_id = parse_id(before, MAX_EVENT_ID) if before else None
    if before and before_id is None:
        errors["before"] = "must be an event id (a whole number)"
    filters = {"action": action or None, "actor": actor or None, "before": before_id}
    return filters, errors


@page("admin.audit", ADMIN, AUDIT)
def audit_page(request):
    # Reading the log is not itself an audited event: nothing is recorded.
    filters, errors = _audit_filters(request)
    service = request.find_service(AuditService)
    if errors and not wants_html(request):
        field, message = next(iter(errors.items()))
        raise HTTPBadRequest(f"{field}: {message}")
    if errors:
        # The form comes back as it was sent, the reason beside the field.
        request.response.status = 400
        return _page(
            request,
            events=[],
            actions=service.actions(),
            action=request.GET.get("action", "")[:100],
            actor=request.GET.get("actor", "")[:100],
            paged=False,
            older=None,
            compact_json=compact_json,
            errors=errors,
        )
    # One row more than shown, to know whether there is an older page.
    events = service.page(limit=AUDIT_PAGE_ROWS + 1, **filters)
    older = None
    if len(events) > AUDIT_PAGE_ROWS:
        events = events[:AUDIT_PAGE_ROWS]
        query = {
            key: value
            for key, value in (
                ("action", filters["action"]),
                ("actor", filters["actor"]),
            )
            if value
        }
        older = request.route_url(
            "admin.audit", _query={**query, "before": events[-1].id}
        )
    return _page(
        request,
        events=events,
        actions=service.actions(),
        action=filters["action"] or "",
        actor=filters["actor"] or "",
        paged=filters["before"] is not None,
        older=older,
        compact_json=compact_json,
        errors={},
    )
