"""Who may call what: every route × method × principal, by real requests.

The table below is the whole access policy, read as one page. The tests
fail when the app serves a (route, method) the table does not mention, so a
new route cannot be added without deciding who may use it; and when a view
bound to a route has no explicit permission (the default, ADMIN, would close
it, but closed by accident is still a decision nobody made).
"""

import datetime
import functools
from dataclasses import dataclass
from typing import Any

import pytest
import webtest
from pyramid.interfaces import IException, IRoutesMapper
from pyramid.predicates import RequestMethodPredicate
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy.orm import Session

from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.accounts.tokens import UserTokenService
from stethoscope.audit.services import AuditService
from stethoscope.config import configure
from stethoscope.registry.models import Badge, Beacon, Gateway, Room, Site
from stethoscope.registry.tokens import GatewayTokenService, TokenCache
from stethoscope.singletons import DATABASE
from tests.conftest import PASSWORD, login
from tests.support.models import register_model

ANONYMOUS, VIEWER, STAFF, ADMIN, GATEWAY = (
    "anonymous",
    "viewer",
    "staff",
    "admin",
    "gateway",
)
PRINCIPALS = (ANONYMOUS, VIEWER, STAFF, ADMIN, GATEWAY)
# Each role again, with one of the user's API tokens instead of a session
# (Authorization: Bearer stu_…, no cookie, no CSRF token). A token acts
# exactly as its user's session would, so the table does not list them: a
# token principal expects what its role's column says (``expected_of``).
TOKEN_OF = {"viewer-token": VIEWER, "staff-token": STAFF, "admin-token": ADMIN}
ALL_PRINCIPALS = (*PRINCIPALS, *TOKEN_OF)
GATEWAY_ID = "pi-kitchen"
# A view that accepts any method (the static view) is listed under ANY and
# requested with GET.
ANY = "ANY"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


# A browser that is not logged in asks for a page: 303 to the login form,
# which sends it back after.
TO_LOGIN = "303 to /login?next=..."


@dataclass(frozen=True)
class Call:
    """How to exercise one (route, method): the URL, the body, the Accept."""

    url: str
    html: bool = False  # ask for text/html, as a browser does
    json: Any = None  # a JSON body (else a form body, when unsafe)
    form: dict | None = None


def reading(badge_id: str) -> dict:
    return {
        "badge_id": badge_id,
        "pi_id": GATEWAY_ID,
        "beacons": {"b-kitchen": -58},
        "badge_strength": -62,
    }


def readers(ok=200) -> dict:
    """VIEW: any member of staff; not a gateway, not anonymous."""
    return {ANONYMOUS: 401, VIEWER: ok, STAFF: ok, ADMIN: ok, GATEWAY: 403}


def historians(ok=200) -> dict:
    """VIEW_HISTORY: staff and admins."""
    return {ANONYMOUS: 401, VIEWER: 403, STAFF: ok, ADMIN: ok, GATEWAY: 403}


def admin_json(ok) -> dict:
    return {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: ok, GATEWAY: 403}


def admin_page(ok=200) -> dict:
    return {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 403, ADMIN: ok, GATEWAY: 403}


def admin_form(ok=303) -> dict:
    return {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: ok, GATEWAY: 403}


# The house the fixture builds (matrix_app): site "house", rooms "kitchen"
# and "hall", beacon "b-kitchen", gateway GATEWAY_ID, badge "badge-known".
# Each principal runs against a fresh database, in the table's order, so the
# admin's creations and deletions follow each other as written.

# Which routes take which permission (stethoscope.security):
#   public: health, login, docs, static
#   VIEW (viewer and up): dashboard, readings, gateways, badges
#   VIEW_HISTORY (staff and up): location history, stays
#   VIEW also: sites, rooms, beacons, gateways of the registry (no wearers)
#   ADMIN: admin.*, registry writes, badges (wearers), unplaced devices,
#          training runs (where residents were), models (which name the
#          rooms);
#   LOGGED_IN: logout;  INGEST: POST /rssi_readings
# With stethoscope.ingest.require_token = true, as in production.ini.
MATRIX: dict[tuple[str, str], tuple[Call, dict[str, Any]]] = {
    ("ops.health", "GET"): (
        Call("/health"),
        {ANONYMOUS: 200, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 200},
    ),
    ("__static/", ANY): (
        Call("/static/stethoscope.css"),
        {ANONYMOUS: 200, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 200},
    ),
    ("apidocs.index", "GET"): (
        Call("/docs", html=True),
        {ANONYMOUS: 200, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 200},
    ),
    ("apidocs.page", "GET"): (
        Call("/docs/health", html=True),
        {ANONYMOUS: 200, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 200},
    ),
    ("apidocs.openapi", "GET"): (
        Call("/openapi.json"),
        {ANONYMOUS: 200, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 200},
    ),
    # No permission of Pyramid's: the monitoring server's address or the
    # metrics token decides (test_metrics.py), and the tests' address is
    # neither, whoever is logged in.
    ("ops.metrics", "GET"): (
        Call("/metrics"),
        {ANONYMOUS: 403, VIEWER: 403, STAFF: 403, ADMIN: 403, GATEWAY: 403},
    ),
    ("accounts.login", "GET"): (
        Call("/login", html=True),
        {ANONYMOUS: 200, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 200},
    ),
    # A wrong password: 401 and the form again. A gateway has no session,
    # so no CSRF token: refused before the password is looked at.
    ("accounts.login", "POST"): (
        Call(
            "/login",
            html=True,
            # A name per principal: the table must not lock anyone out.
            form={"username": "nobody-{principal}", "password": "wrong"},
        ),
        {ANONYMOUS: 401, VIEWER: 401, STAFF: 401, ADMIN: 401, GATEWAY: 403},
    ),
    ("dashboard.home", "GET"): (
        Call("/", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    # One badge (VIEW; the wearer only with VIEW_HISTORY) and its day
    # (VIEW_HISTORY), stethoscope/dashboard/views.py.
    ("dashboard.badge", "GET"): (
        Call("/badges/badge-known", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    # Its "Now" panel alone, which badge.js swaps in (VIEW, as the page).
    ("dashboard.badge_now", "GET"): (
        Call("/badges/badge-known/now", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    ("dashboard.badge_history", "GET"): (
        Call("/badges/badge-known/history", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    ("dashboard.badge_history_csv", "GET"): (
        # The badge has no site: nothing to list, for those who may ask.
        Call("/badges/badge-known/history.csv"),
        historians(404),
    ),
    ("ingest.readings.page", "GET"): (
        Call("/rssi_readings"),
        {ANONYMOUS: 401, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    # The staff pages (stethoscope/dashboard/pages.py); /gateways, /beacons,
    # /badges and /alerts answer a browser with a page, with the same access.
    ("dashboard.readings", "GET"): (
        Call("/readings", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    ("registry.gateways", "GET"): (
        Call("/gateways"),
        {ANONYMOUS: 401, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    ("registry.badges", "GET"): (
        Call("/badges"),
        {ANONYMOUS: 401, VIEWER: 200, STAFF: 200, ADMIN: 200, GATEWAY: 403},
    ),
    # Staff cookies are refused: only a gateway token may post readings.
    ("ingest.readings", "POST"): (
        Call("/rssi_readings", json=reading("badge-17")),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 403, GATEWAY: 201},
    ),
    ("admin.users", "GET"): (
        Call("/admin/users", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 403, ADMIN: 200, GATEWAY: 403},
    ),
    ("admin.users", "POST"): (
        Call(
            "/admin/users",
            html=True,
            form={
                "username": "added-{principal}",
                "role": "viewer",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        ),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 303, GATEWAY: 403},
    ),
    ("admin.user", "GET"): (
        Call("/admin/users/viewer", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 403, ADMIN: 200, GATEWAY: 403},
    ),
    ("admin.user", "POST"): (
        Call("/admin/users/viewer", html=True, form={"change": "sessions"}),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 303, GATEWAY: 403},
    ),
    ("admin.user.tokens", "POST"): (
        Call("/admin/users/viewer/tokens", html=True, form={"expires": "30"}),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 201, GATEWAY: 403},
    ),
    ("admin.user.token", "POST"): (
        Call("/admin/users/viewer/tokens/{user_token_id}", html=True, form={}),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 303, GATEWAY: 403},
    ),
    ("admin.tokens", "GET"): (
        Call("/admin/gateway_tokens", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 403, ADMIN: 200, GATEWAY: 403},
    ),
    ("admin.tokens", "POST"): (
        Call("/admin/gateway_tokens", html=True, form={"gateway_id": "pi-new"}),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 201, GATEWAY: 403},
    ),
    ("admin.token", "POST"): (
        Call("/admin/gateway_tokens/{token_id}", html=True, form={}),
        {ANONYMOUS: 401, VIEWER: 403, STAFF: 403, ADMIN: 303, GATEWAY: 403},
    ),
    ("admin.home", "GET"): (
        Call("/admin", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 403, ADMIN: 200, GATEWAY: 403},
    ),
    ("admin.audit", "GET"): (
        Call("/admin/audit", html=True),
        {ANONYMOUS: TO_LOGIN, VIEWER: 403, STAFF: 403, ADMIN: 200, GATEWAY: 403},
    ),
    # The registry (stethoscope/registry/views.py).
    ("registry.sites", "GET"): (Call("/sites"), readers()),
    ("registry.sites", "POST"): (
        Call("/sites", json={"id": "s-{principal}", "name": "S", "timezone": "UTC"}),
        admin_json(201),
    ),
    ("registry.site", "GET"): (Call("/sites/house"), readers()),
    ("registry.site", "PUT"): (
        Call("/sites/house", json={"name": "Home"}),
        admin_json(200),
    ),
    ("registry.site", "DELETE"): (Call("/sites/s-{principal}"), admin_json(204)),
    ("registry.rooms", "GET"): (Call("/rooms?site=house"), readers()),
    ("registry.rooms", "POST"): (
        Call("/rooms", json={"id": "r-{principal}", "name": "R", "site": "house"}),
        admin_json(201),
    ),
    ("registry.rooms.export", "GET"): (Call("/export/rooms?format=csv"), readers()),
    ("registry.rooms.import", "POST"): (
        Call("/import/rooms", json=[{"id": "hall", "name": "Hall", "site": "house"}]),
        admin_json(200),
    ),
    ("registry.room", "GET"): (Call("/rooms/kitchen"), readers()),
    ("registry.room", "PUT"): (
        Call("/rooms/kitchen", json={"floor": 1}),
        admin_json(200),
    ),
    ("registry.room", "DELETE"): (Call("/rooms/r-{principal}"), admin_json(204)),
    ("registry.beacons", "GET"): (Call("/beacons"), readers()),
    ("registry.beacons", "POST"): (
        Call("/beacons", json={"id": "b-{principal}", "room": "hall"}),
        admin_json(201),
    ),
    ("registry.beacons.export", "GET"): (
        Call("/export/beacons?format=json"),
        readers(),
    ),
    ("registry.beacons.import", "POST"): (
        Call("/import/beacons", json=[{"id": "b-kitchen", "room": "kitchen"}]),
        admin_json(200),
    ),
    ("registry.beacon", "GET"): (Call("/beacons/b-kitchen"), readers()),
    ("registry.beacon", "PUT"): (
        Call("/beacons/b-kitchen", json={"label": "by the door"}),
        admin_json(200),
    ),
    ("registry.beacon", "DELETE"): (Call("/beacons/b-{principal}"), admin_json(204)),
    ("registry.gateway_list", "GET"): (Call("/registry/gateways"), readers()),
    ("registry.gateway", "GET"): (Call(f"/registry/gateways/{GATEWAY_ID}"), readers()),
    ("registry.gateway", "PUT"): (
        Call(f"/registry/gateways/{GATEWAY_ID}", json={"name": "Kitchen Pi"}),
        admin_json(200),
    ),
    ("registry.badge_list", "GET"): (Call("/registry/badges"), admin_json(200)),
    ("registry.badge", "GET"): (Call("/registry/badges/badge-known"), admin_json(200)),
    ("registry.badge", "PUT"): (
        Call("/registry/badges/badge-known", json={"active": False}),
        admin_json(200),
    ),
    ("registry.unplaced", "GET"): (Call("/registry/unplaced"), admin_json(200)),
    ("admin.house", "GET"): (Call("/admin/house", html=True), admin_page()),
    ("admin.house.sites", "POST"): (
        Call(
            "/admin/house/sites",
            html=True,
            form={"id": "ps-{principal}", "name": "P", "timezone": "UTC"},
        ),
        admin_form(),
    ),
    ("admin.house.site", "GET"): (
        Call("/admin/house/sites/house", html=True),
        admin_page(),
    ),
    ("admin.house.site", "POST"): (
        Call(
            "/admin/house/sites/house",
            html=True,
            form={"name": "Home", "timezone": "Europe/London"},
        ),
        admin_form(),
    ),
    ("admin.house.rooms", "POST"): (
        Call(
            "/admin/house/rooms",
            html=True,
            form={"id": "pr-{principal}", "name": "P", "site": "house"},
        ),
        admin_form(),
    ),
    ("admin.house.room", "GET"): (
        Call("/admin/house/rooms/kitchen", html=True),
        admin_page(),
    ),
    ("admin.house.room", "POST"): (
        Call(
            "/admin/house/rooms/kitchen",
            html=True,
            form={"name": "Kitchen", "site": "house", "floor": "0"},
        ),
        admin_form(),
    ),
    ("admin.house.import", "POST"): (
        # No file: the admin gets the form back with the error (400).
        Call("/admin/house/import", html=True, form={"kind": "rooms"}),
        admin_form(400),
    ),
    ("admin.house.beacons", "GET"): (
        Call("/admin/house/beacons", html=True),
        admin_page(),
    ),
    ("admin.house.beacons", "POST"): (
        Call(
            "/admin/house/beacons",
            html=True,
            form={"id": "pb-{principal}", "room": "kitchen"},
        ),
        admin_form(),
    ),
    ("admin.house.beacon", "GET"): (
        Call("/admin/house/beacons/b-kitchen", html=True),
        admin_page(),
    ),
    ("admin.house.beacon", "POST"): (
        Call("/admin/house/beacons/b-kitchen", html=True, form={"room": "hall"}),
        admin_form(),
    ),
    ("admin.house.devices", "GET"): (
        Call("/admin/house/devices", html=True),
        admin_page(),
    ),
    ("admin.house.gateway", "GET"): (
        Call(f"/admin/house/gateways/{GATEWAY_ID}", html=True),
        admin_page(),
    ),
    ("admin.house.gateway", "POST"): (
        Call(f"/admin/house/gateways/{GATEWAY_ID}", html=True, form={"site": "house"}),
        admin_form(),
    ),
    ("admin.house.badge", "GET"): (
        Call("/admin/house/badges/badge-known", html=True),
        admin_page(),
    ),
    ("admin.house.badge", "POST"): (
        Call("/admin/house/badges/badge-known", html=True, form={"site": "house"}),
        admin_form(),
    ),
    ("admin.house.unplaced", "GET"): (
        Call("/admin/house/unplaced", html=True),
        admin_page(),
    ),
    # Training runs (stethoscope/labels/views.py): where residents were.
    ("labels.runs", "GET"): (Call("/training_runs"), admin_json(200)),
    ("labels.bulk_start", "POST"): (
        Call(
            "/training_runs/bulk_start",
            json={"badge_ids": ["badge-m"], "room_id": "kitchen"},
        ),
        admin_json(201),
    ),
    ("labels.bulk_stats", "GET"): (Call("/training_runs/bulk_stats"), admin_json(200)),
    ("labels.bulk_end", "POST"): (
        Call("/training_runs/bulk_end", json={"badge_ids": ["badge-m"]}),
        admin_json(200),
    ),
    ("labels.coverage", "GET"): (Call("/training_runs/coverage"), admin_json(200)),
    ("labels.run", "GET"): (Call("/training_runs/999999"), admin_json(404)),
    ("labels.run", "DELETE"): (Call("/training_runs/999999"), admin_json(404)),
    ("labels.run.cancel", "POST"): (
        Call("/training_runs/999999/cancel", json={}),
        admin_json(404),
    ),
    ("labels.run.relabel", "POST"): (
        Call("/training_runs/999999/relabel", json={"room_id": "kitchen"}),
        admin_json(404),
    ),
    ("admin.training", "GET"): (Call("/admin/training", html=True), admin_page()),
    ("admin.training.start", "POST"): (
        Call(
            "/admin/training/start",
            html=True,
            form={"room_id": "hall", "other_badges": "badge-{principal}"},
        ),
        admin_form(),
    ),
    ("admin.training.end", "POST"): (
        Call("/admin/training/end", html=True, form={"all": "true"}),
        admin_form(),
    ),
    ("admin.training.history", "GET"): (
        Call("/admin/training/history", html=True),
        admin_page(),
    ),
    ("admin.training.run", "POST"): (
        Call("/admin/training/runs/999999", html=True, form={"change": "cancel"}),
        admin_form(404),
    ),
    ("admin.training.coverage", "GET"): (
        Call("/admin/training/coverage", html=True),
        admin_page(),
    ),
    # Models (stethoscope/learning/views.py): they name the rooms residents
    # were in. matrix_app registers versions 1 and 2 of "house"; the admin's
    # rows activate 2 (form), then 1 (JSON), roll back to 2 (JSON) and to 1
    # (form), in this order.
    ("admin.models", "GET"): (Call("/admin/models", html=True), admin_page()),
    ("admin.model", "GET"): (Call("/admin/models/1", html=True), admin_page()),
    ("admin.model.activate", "POST"): (
        Call("/admin/models/2/activate", html=True, form={}),
        admin_form(),
    ),
    ("learning.models", "GET"): (Call("/models"), admin_json(200)),
    ("learning.model", "GET"): (Call("/models/1"), admin_json(200)),
    ("learning.compare", "GET"): (Call("/models/compare?a=1&b=2"), admin_json(200)),
    ("learning.model.activate", "POST"): (
        Call("/models/1/activate", json={}),
        admin_json(200),
    ),
    ("learning.rollback", "POST"): (
        Call("/models/rollback", json={"site_id": "house"}),
        admin_json(200),
    ),
    ("admin.models.rollback", "POST"): (
        Call("/admin/models/rollback", html=True, form={"site_id": "house"}),
        admin_form(),
    ),
    # Locating (stethoscope/locating/views.py): where a badge is now is
    # VIEW; its day and who wears it, VIEW_HISTORY. badge-nobody sent nothing
    # and has no site (404 once allowed).
    ("locating.location", "GET"): (Call("/badges/badge-nobody/location"), readers(404)),
    ("locating.location", "POST"): (
        Call("/badges/badge-nobody/location", json={"priors": [["kitchen", 2]]}),
        readers(404),
    ),
    ("locating.history", "GET"): (
        Call("/badges/badge-nobody/location_history?date=2026-03-29"),
        historians(404),
    ),
    ("locating.history", "POST"): (
        Call("/badges/badge-nobody/location_history", json={"date": "2026-03-29"}),
        historians(404),
    ),
    ("locating.stays", "GET"): (Call("/badges/badge-nobody/stays"), historians(404)),
    ("locating.occupancy", "GET"): (Call("/sites/nowhere/occupancy"), readers(404)),
    # Alerts (stethoscope/alerts/views.py): what is wrong is VIEW; wearers
    # of the badges they name only with VIEW_HISTORY (test_alerts.py).
    ("alerts.list", "GET"): (Call("/alerts"), readers()),
    # Logging out ends the principal's session: the table runs it last.
    ("accounts.logout", "POST"): (
        Call("/logout", html=True, form={}),
        {ANONYMOUS: 401, VIEWER: 303, STAFF: 303, ADMIN: 303, GATEWAY: 403},
    ),
}

# The views anyone may use, logged in or not. Anything else names a permission.
PUBLIC = {
    ("ops.health", "GET"),
    ("__static/", ANY),
    ("apidocs.index", "GET"),
    ("apidocs.page", "GET"),
    ("apidocs.openapi", "GET"),
    ("ops.metrics", "GET"),
    ("accounts.login", "GET"),
    ("accounts.login", "POST"),
}


def _methods(values) -> list[str]:
    if not values:
        return []
    if isinstance(values, str):
        values = [values]
    # HEAD comes with GET; it is not a separate decision.
    return [method for method in values if method != "HEAD"]


def _view_permission(item) -> Any:
    """The permission given explicitly to a view, or None."""
    for related in item["related"]:
        if related.category_name == "permissions":
            return related["value"]
    return None


def _is_exception_view(intr) -> bool:
    if intr.get("exception_only"):
        return True
    context = intr.get("context")
    if isinstance(context, type):
        return issubclass(context, BaseException)
    return context is not None and context.isOrExtends(IException)


def route_views(registry) -> dict[tuple[str, str], list]:
    """(route name, method) → the introspected views that serve it.

    Every route the IRoutesMapper knows appears: a route with no view at all
    as (name, "NO VIEW"), so that it shows up in a comparison with the table.
    """
    mapper = registry.getUtility(IRoutesMapper)
    route_methods = {
        route.name: [
            method
            for predicate in route.predicates
            if isinstance(predicate, RequestMethodPredicate)
            for method in _methods(predicate.val)
        ]
        for route in mapper.get_routes()
    }
    found: dict[tuple[str, str], list] = {}
    for item in registry.introspector.get_category("views"):
        intr = item["introspectable"]
        name = intr.get("route_name")
        if name is None:
            continue
        methods = (
            _methods(intr.get("request_methods")) or route_methods.get(name) or [ANY]
        )
        for method in methods:
            found.setdefault((name, method), []).append(item)
    for name in route_methods:
        if not any(route == name for route, _ in found):
            found[(name, "NO VIEW")] = []
    return found


def unpermitted_views(registry) -> list[str]:
    """Views reachable by URL (or by context) that name no permission."""
    problems = []
    for item in registry.introspector.get_category("views"):
        intr = item["introspectable"]
        if intr.get("route_name") is None and _is_exception_view(intr):
            continue
        if intr.get("route_name") is None and intr.get("context") is None:
            # Pyramid's own default exception-response view.
            continue
        if _view_permission(item) is None:
            problems.append(f"{intr.get('route_name')}: {intr.title}")
    return sorted(problems)


def public_views(registry) -> set[tuple[str, str]]:
    return {
        key
        for key, items in route_views(registry).items()
        if any(_view_permission(item) == NO_PERMISSION_REQUIRED for item in items)
    }


# --- The table against the app ------------------------------------------------


def test_every_route_and_method_is_in_the_table(make_app):
    registered = set(route_views(make_app().app.registry))
    tabled = set(MATRIX)

    assert not registered - tabled, (
        "routes the app serves that the access table does not decide: "
        f"{sorted(registered - tabled)}"
    )
    assert not tabled - registered, (
        f"routes in the access table the app does not serve: "
        f"{sorted(tabled - registered)}"
    )


def test_every_view_names_a_permission(make_app):
    registry = make_app().app.registry

    assert unpermitted_views(registry) == []


def test_public_views_are_exactly_the_public_list(make_app):
    assert public_views(make_app().app.registry) == PUBLIC


def test_the_table_knows_every_principal():
    for key, (_call, expected) in MATRIX.items():
        assert set(expected) == set(PRINCIPALS), key


def expected_of(expected: dict[str, Any], principal: str):
    """What ``principal`` gets: a token principal, what its role gets."""
    return expected[TOKEN_OF.get(principal, principal)]


def test_a_new_route_without_a_permission_is_caught(app_settings):
    """The guard itself: a route added without thought fails the checks."""
    config = configure(app_settings)
    config.add_route("test.careless", "/careless")
    config.add_view(lambda request: Response("open?"), route_name="test.careless")
    config.commit()
    try:
        assert ("test.careless", ANY) in set(route_views(config.registry)) - set(MATRIX)
        assert any(
            p.startswith("test.careless:") for p in unpermitted_views(config.registry)
        )
        # And it is closed meanwhile: the default permission is ADMIN.
        app = webtest.TestApp(config.make_wsgi_app())
        app.get("/careless", status=401)
    finally:
        config.registry[DATABASE].dispose()


def test_a_route_without_a_view_is_caught(app_settings):
    config = configure(app_settings)
    config.add_route("test.viewless", "/viewless")
    config.commit()
    try:
        assert ("test.viewless", "NO VIEW") in route_views(config.registry)
    finally:
        config.registry[DATABASE].dispose()


# --- Real requests ---------------------------------------------------------------


@dataclass(frozen=True)
class Matrix:
    app: webtest.TestApp
    users: dict[str, tuple[str, str]]  # role → (username, password)
    token: str  # the gateway's
    token_id: int
    user_tokens: dict[str, str]  # role → one of that user's API tokens
    user_token_id: int  # of the viewer

    def url(self, call: Call, principal: str) -> str:
        return call.url.format(
            token_id=self.token_id,
            user_token_id=self.user_token_id,
            principal=principal,
        )


@pytest.fixture
def matrix_app(make_app, create_user, engine):
    """The production-like app, every kind of user with an API token each,
    and a gateway token."""
    app = make_app(**{"stethoscope.ingest.require_token": "true"})
    users = {role: create_user(role, role) for role in (VIEWER, STAFF, ADMIN)}
    user_tokens = {}
    with Session(engine) as session, session.begin():
        token, row = GatewayTokenService(session, TokenCache(0)).create(
            GATEWAY_ID, "test"
        )
        token_id = row.id
        audit = functools.partial(
            AuditService(session).record, actor="test", actor_type="console"
        )
        for role in users:
            user = UserService(session, Passwords("cheapest")).require(role)
            user_tokens[role], user_row = UserTokenService(session, audit).create(
                user, "test"
            )
            if role == VIEWER:
                user_token_id = user_row.id
        session.add(Site(id="house", name="House", timezone="Europe/London"))
        session.flush()
        session.add_all(
            [
                Room(id="kitchen", site_id="house", name="Kitchen"),
                Room(id="hall", site_id="house", name="Hall"),
            ]
        )
        session.flush()
        session.add_all(
            [
                Beacon(id="b-kitchen", room_id="kitchen"),
                Gateway(id=GATEWAY_ID),
                Badge(id="badge-known"),
            ]
        )
    # Two real artifacts: activating one loads and verifies it.
    for _ in range(2):
        register_model(
            engine,
            make_app.settings["stethoscope.model_dir"],
            "house",
            ["kitchen", "hall"],
        )
    return Matrix(app, users, token, token_id, user_tokens, user_token_id)


def csrf_token(app) -> str:
    """The CSRF token of ``app``'s session (creating one if it has none)."""
    form = app.get("/login", headers={"Accept": "text/html"}).forms["login"]
    return form["csrf_token"].value


def principal_app(matrix: Matrix, principal):
    """A TestApp acting as ``principal``, and the headers it sends."""
    if principal == GATEWAY:
        return matrix.app, {"Authorization": f"Bearer {matrix.token}"}
    if principal in TOKEN_OF:
        token = matrix.user_tokens[TOKEN_OF[principal]]
        return matrix.app, {"Authorization": f"Bearer {token}"}
    if principal == ANONYMOUS:
        return matrix.app, {}
    login(matrix.app, *matrix.users[principal])
    return matrix.app, {}


def uses_bearer(principal) -> bool:
    return principal == GATEWAY or principal in TOKEN_OF


def request(app, headers, principal, method, call: Call, matrix: Matrix):
    url = matrix.url(call, principal)
    headers = dict(headers)
    form = {
        name: value.format(principal=principal)
        for name, value in (call.form or {}).items()
    }
    if call.html:
        headers["Accept"] = "text/html"
    if uses_bearer(principal):
        app.reset()  # a machine with a token keeps no cookie
    method = "GET" if method == ANY else method
    if method in SAFE_METHODS:
        return app.request(url, method=method, headers=headers, expect_errors=True)
    if not uses_bearer(principal):
        # Every cookie user sends its CSRF token: the table is about roles;
        # test_csrf_is_required_for_every_unsafe_route is about the token.
        # A user's API token needs none: its rows show that it is not asked.
        headers["X-CSRF-Token"] = csrf_token(app)
    if call.json is not None:
        body = _with_principal(call.json, principal)
        send = {"POST": app.post_json, "PUT": app.put_json, "DELETE": app.delete_json}
        return send[method](url, body, headers=headers, expect_errors=True)
    if method == "DELETE":
        return app.delete(url, headers=headers, expect_errors=True)
    return app.post(url, form, headers=headers, expect_errors=True)


def _with_principal(value, principal):
    """``{principal}`` in the strings of a JSON body, filled in."""
    if isinstance(value, str):
        return value.format(principal=principal)
    if isinstance(value, list):
        return [_with_principal(item, principal) for item in value]
    if isinstance(value, dict):
        return {key: _with_principal(item, principal) for key, item in value.items()}
    return value


def _matches(expected, response) -> bool:
    if expected == TO_LOGIN:
        return response.status_int == 303 and response.location.startswith(
            "http://localhost/login?next="
        )
    return response.status_int == expected


@pytest.mark.parametrize("principal", ALL_PRINCIPALS)
def test_route_matrix(make_app, matrix_app, principal):
    app, headers = principal_app(matrix_app, principal)
    wrong = []
    # Logout last: it ends the session the other rows need.
    for key in sorted(MATRIX, key=lambda k: k[0] == "accounts.logout"):
        call, expected = MATRIX[key]
        response = request(app, headers, principal, key[1], call, matrix_app)
        want = expected_of(expected, principal)
        if not _matches(want, response):
            wrong.append(
                f"{key[1]} {call.url} ({key[0]}): {response.status_int}, "
                f"expected {want}: {response.body[:120]!r}"
            )
    assert not wrong, f"as {principal}:\n" + "\n".join(wrong)


def test_wrong_methods_are_405_for_everyone(make_app, matrix_app):
    """A method no view of the path takes is 405, before any permission check."""
    served: dict[str, set[str]] = {}
    urls: dict[str, str] = {}
    for (route, method), (call, _) in MATRIX.items():
        if method != ANY:
            served.setdefault(route, set()).add(method)
            urls.setdefault(route, call.url)
    mapper = matrix_app.app.app.registry.getUtility(IRoutesMapper)
    routes = {route.name: route for route in mapper.get_routes()}
    for route in served:
        url = matrix_app.url(Call(urls[route]), ANONYMOUS)
        path = url.partition("?")[0]
        # Allow lists what every route of this path takes (/rssi_readings
        # has a route for GET and one for POST).
        methods = set().union(
            *(
                taken
                for name, taken in served.items()
                if routes[name].match(path) is not None
            )
        )
        for headers in (
            {},
            {"Authorization": f"Bearer {matrix_app.token}"},
            {"Authorization": f"Bearer {matrix_app.user_tokens[ADMIN]}"},
        ):
            response = matrix_app.app.request(
                url, method="PATCH", headers=headers, expect_errors=True
            )
            assert response.status_int == 405, (url, headers, response.body)
            allowed = set(response.headers["Allow"].split(", ")) - {"HEAD"}
            assert allowed == methods, url


def test_csrf_is_required_for_every_unsafe_route(make_app, matrix_app):
    """Every unsafe method but the token-authenticated ingest needs the
    token when a cookie authenticates it (for a user's API token, see the
    token principals of test_route_matrix)."""
    app = matrix_app.app
    login(app, *matrix_app.users[ADMIN])
    for (route, method), (call, _) in MATRIX.items():
        if method in SAFE_METHODS | {ANY} or route == "ingest.readings":
            continue
        url = matrix_app.url(call, ADMIN)
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            response = app.request(
                url,
                method=method,
                POST=call.form or {} if method == "POST" else None,
                headers=headers,
                expect_errors=True,
            )
            assert response.status_int == 403, (route, method, response.body)
            assert "CSRF" in response.json["message"], route
    # Still logged in: the refused logout did nothing.
    app.get("/gateways", status=200)


def test_ingest_needs_no_csrf_token(make_app, matrix_app):
    app, token = matrix_app.app, matrix_app.token
    now = datetime.datetime.now(datetime.UTC).isoformat()
    response = app.post_json(
        "/rssi_readings",
        {**reading("badge-1"), "observed_at": now},
        headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
        extra_environ={"wsgi.url_scheme": "https"},
        status=201,
    )
    # Nor does a gateway get a session it would have to carry.
    assert "Set-Cookie" not in response.headers
