"""Requests no client should send, answered 4xx naming what is wrong, never 500.

Bytes that are not UTF-8 in the path or the query string, numbers longer
than int() takes or than a column holds, a NUL in an id (PostgreSQL refuses
it in a query's text), a file where a form expects text, a login's next page
that a browser would read as another site. SQLite and PostgreSQL alike.
"""

import io
import logging
from urllib.parse import quote

import pytest
from pyramid.request import Request
from pyramid.scripting import prepare
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.ops.errors import unexpected_error
from stethoscope.registry.models import Beacon, Room, Site

HTML = {"Accept": "text/html"}
BIG = "1" * 5000  # more digits than int() takes
ARABIC_ONE = "%D9%A1"  # "١": \d matches it, int() reads it as 1


def call(wsgi, path: str, query: str = "", accept: str = "application/json"):
    """(status, headers, body) for a GET of the raw WSGI ``path``.

    Not through webtest: its cookie jar decodes the URL, and a path that is
    not UTF-8 breaks the test client before it reaches the app.
    """
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.10",
        "HTTP_ACCEPT": accept,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=dict(headers))

    body = b"".join(wsgi(environ, start_response))
    return started["status"], started["headers"], body


def token(app) -> str:
    return app.get("/login", headers=HTML).forms["login"]["csrf_token"].value


def assert_invalid(response, field: str) -> None:
    assert response.status_int == 400
    assert response.json["error"] == "invalid"
    assert [error["field"] for error in response.json["errors"]] == [field]


# ---- bytes that are not UTF-8 ------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/\xff", "/sites/\xff", "/rssi_readings\xff", "/health/\xc0"]
)
def test_a_path_that_is_not_utf8_is_400(make_app, path, caplog):
    # PATH_INFO as a WSGI server hands over "%FF": the byte, as latin-1.
    status, headers, body = call(make_app.wsgi(), path)
    assert status == "400 Bad Request"
    assert headers["Content-Type"].startswith("application/json")
    assert b'"field":"path"' in body
    assert "X-Content-Type-Options" in headers
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_browser_gets_the_error_as_a_page(make_app):
    status, headers, body = call(make_app.wsgi(), "/sites/\xff", accept="text/html")
    assert status == "400 Bad Request"
    assert headers["Content-Type"].startswith("text/html")
    assert b"path: must be UTF-8" in body


@pytest.mark.parametrize(
    "url",
    [
        "/rssi_readings?badge_id=%ff",
        "/rssi_readings?limit=%ff",
        "/training_runs?status=%FF",
        "/training_runs/bulk_stats?run_ids=%FF",
        "/training_runs/coverage?site_id=%C3%28",
        "/rooms?site=%FF",
        "/export/beacons?site=%FF",
        "/models?site_id=%FF",
        "/admin/audit?actor=%FF",
        "/admin/training/coverage?site_id=%C3%28",
    ],
)
def test_a_query_string_that_is_not_utf8_is_400(admin, url):
    assert_invalid(admin.get(url, status=400), "query_string")


def test_a_bad_query_string_on_a_page_is_shown_as_a_page(admin):
    page = admin.get("/admin/audit?actor=%FF", headers=HTML, status=400)
    assert page.content_type == "text/html"
    assert "query_string: must be UTF-8" in page.text


def test_a_form_body_that_is_not_utf8_is_answered_as_before(admin):
    # webob decodes form bodies with replacement characters, which the
    # fields' own checks refuse: the form again, 400.
    body = f"csrf_token={token(admin)}&room_id=%FF&badge_ids=b%FE1"
    page = admin.post(
        "/admin/training/start",
        body,
        content_type="application/x-www-form-urlencoded",
        headers=HTML,
        status=400,
    )
    assert page.content_type == "text/html"


def test_an_unexpected_error_is_logged_whatever_the_path(make_app, caplog):
    # The catch-all must not raise again while it logs: request.path decodes
    # the path, which may not be UTF-8.
    app = make_app.wsgi()
    request = Request.blank("/x")
    request.environ["PATH_INFO"] = "/sites/\xff\n"
    env = prepare(request=request, registry=app.registry)
    try:
        response = unexpected_error(RuntimeError("boom"), request)
    finally:
        env["closer"]()
    assert response.status_int == 500
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The request's id (also in the 500's body) finds the log line.
    assert record.getMessage() == (
        f"unexpected error on GET '/sites/ÿ\\n' (request {response.json['request_id']})"
    )


# ---- numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"/training_runs/{BIG}",
        f"/training_runs/{ARABIC_ONE}",
        f"/models/{BIG}",
        f"/models/{ARABIC_ONE}",
        f"/admin/models/{BIG}",
    ],
)
def test_an_id_in_the_path_that_cannot_exist_is_404(admin, url):
    response = admin.get(url, status=404)
    assert response.json["error"] == "not_found"


@pytest.fixture
def kitchen(engine):
    with Session(engine) as session, session.begin():
        session.add(Site(id="home", name="Home", timezone="Europe/London"))
        session.add(Room(id="kitchen", site_id="home", name="Kitchen"))


def test_a_run_id_is_ascii_digits(admin, kitchen):
    # int("١") is 1: run 1 must not answer to it.
    csrf = {"X-CSRF-Token": token(admin)}
    admin.post_json(
        "/training_runs/bulk_start",
        {"badge_ids": ["b1"], "room_id": "kitchen"},
        headers=csrf,
        status=201,
    )
    (run,) = admin.get("/training_runs").json["runs"]
    admin.get(f"/training_runs/{run['id']}", status=200)
    arabic = quote(str(run["id"]).translate({48 + i: 0x660 + i for i in range(10)}))
    admin.get(f"/training_runs/{arabic}", status=404)
    admin.post(
        f"/admin/training/runs/{arabic}",
        {"csrf_token": csrf["X-CSRF-Token"], "change": "cancel"},
        status=404,
    )
    assert admin.get(f"/training_runs/{run['id']}").json["status"] == "open"


@pytest.mark.parametrize(
    "url, field",
    [
        (f"/training_runs?offset={BIG}", "offset"),
        (f"/training_runs/bulk_stats?run_ids=1,{BIG}", "run_ids"),
        (f"/admin/training/history?page={BIG}", "page"),
        (f"/models/compare?a={BIG}&b=1", "a"),
        (f"/models/compare?a={ARABIC_ONE}&b=1", "a"),
    ],
)
def test_a_number_in_the_query_that_cannot_be_is_400(admin, url, field):
    assert_invalid(admin.get(url, status=400), field)


def test_the_audit_page_refuses_a_huge_event_id(admin):
    response = admin.get(f"/admin/audit?before={BIG}", status=400)
    assert response.json["message"].startswith("before:")


@pytest.mark.parametrize("token_id", ["9" * 30, BIG, "2147483648"])
def test_revoking_a_token_that_cannot_exist_is_404(admin, token_id):
    admin.post(
        f"/admin/gateway_tokens/{token_id}", {"csrf_token": token(admin)}, status=404
    )


def test_ending_or_changing_a_run_that_cannot_exist(admin):
    csrf = token(admin)
    admin.post("/admin/training/end", {"csrf_token": csrf, "run_id": BIG}, status=400)
    admin.post(
        f"/admin/training/runs/{BIG}",
        {"csrf_token": csrf, "change": "cancel"},
        status=404,
    )


# ---- a NUL in an id ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/sites/a%00b",
        "/rooms/a%00b",
        "/beacons/a%00b",
        "/registry/gateways/a%00b",
        "/registry/badges/a%00b",
        "/admin/users/a%00b",
        "/admin/house/sites/a%00b",
        "/admin/house/rooms/a%00b",
        "/admin/house/beacons/a%00b",
        "/admin/house/badges/a%00b",
        "/admin/house/gateways/a%00b",
    ],
)
def test_a_nul_in_a_path_id_is_404(admin, url):
    admin.get(url, status=404)


@pytest.mark.parametrize("kind", ["gateways", "badges"])
def test_a_nul_in_a_device_described_over_json_is_400(admin, kind):
    response = admin.put_json(
        f"/registry/{kind}/a%00b",
        {"site": None},
        headers={"X-CSRF-Token": token(admin)},
        status=400,
    )
    assert_invalid(response, "id")


@pytest.mark.parametrize(
    "url", ["/rooms?site=a%00b", "/beacons?site=a%00b", "/export/rooms?site=a%00b"]
)
def test_a_nul_in_the_site_filter_is_400(testapp, url):
    assert_invalid(testapp.get(url, status=400), "site")


def test_a_nul_in_a_login_name_is_a_failed_login(anonymous, create_user, db):
    create_user("boss", "admin")
    form = anonymous.get("/login", headers=HTML).forms["login"]
    form["username"] = "boss\x00"
    form["password"] = "correct horse battery staple"
    page = form.submit(status=401)
    assert "Wrong username or password." in page.text
    db.rollback()
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "login.failure")
    ).one()
    assert event.target == event.actor == "boss\\x00"


# ---- a file where text is expected ---------------------------------------------


@pytest.mark.parametrize(
    "url, fields, upload",
    [
        (
            "/admin/users",
            {"role": "viewer", "password": "x", "confirm": "x"},
            "username",
        ),
        ("/admin/gateway_tokens", {}, "gateway_id"),
        ("/admin/house/sites", {"name": "Elm", "timezone": "UTC"}, "id"),
        ("/admin/house/rooms", {"name": "Hall", "site": ""}, "id"),
        ("/admin/house/beacons", {"room": ""}, "id"),
        ("/admin/training/start", {"badge_ids": "b1"}, "room_id"),
        ("/admin/training/start", {"room_id": "kitchen"}, "badge_ids"),
        ("/admin/training/end", {}, "run_id"),
        ("/admin/models/rollback", {}, "site_id"),
        ("/admin/house/gateways/gw1", {}, "site"),
        ("/admin/house/gateways/gw1", {"site": ""}, "name"),
        ("/admin/house/badges/b1", {}, "site"),
        ("/admin/house/badges/b1", {"site": ""}, "wearer"),
        ("/admin/house/beacons/bk1", {}, "room"),
        ("/admin/house/beacons/bk1", {"room": ""}, "label"),
    ],
)
def test_a_file_for_a_text_field_is_400_naming_it(admin, engine, url, fields, upload):
    with Session(engine) as session, session.begin():
        session.add(Beacon(id="bk1"))
    response = admin.post(
        url,
        {"csrf_token": token(admin), **fields},
        upload_files=[(upload, "x.txt", b"oak")],
        status=400,
    )
    assert_invalid(response, upload)


def test_a_file_for_the_login_name_is_400(anonymous):
    response = anonymous.post(
        "/login",
        {"csrf_token": token(anonymous), "password": "x" * 12},
        upload_files=[("username", "u.txt", b"boss")],
        status=400,
    )
    assert_invalid(response, "username")


# ---- where a login leads -------------------------------------------------------


@pytest.mark.parametrize(
    "next_url", ["/\\evil.example/x", "/\t/evil.example/x", "/\n/evil.example"]
)
def test_login_never_leads_off_the_site(make_app, create_user, next_url):
    # Browsers read "\" as "/" and drop tabs and newlines from a URL.
    app = make_app()
    form = app.get("/login", params={"next": next_url}, headers=HTML).forms["login"]
    assert form["next"].value == "/"
    username, password = create_user("nurse", "viewer")
    response = app.post(
        "/login",
        {
            "csrf_token": form["csrf_token"].value,
            "username": username,
            "password": password,
            "next": next_url,
        },
        status=303,
    )
    assert response.location in ("/", "http://localhost/")
