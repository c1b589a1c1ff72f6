"""Users' API tokens (Bearer stu_…): made on the admin pages, used by the
home's other systems with their user's role, refused once revoked, expired
or disabled, never good for posting readings.

Who may call which route with a token is also in test_security_matrix.py
(a token principal per role); this module is about how tokens behave.
"""

import datetime
import functools
import hashlib

import pytest
import webtest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from stethoscope.accounts.models import Role, User, UserToken
from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.accounts.tokens import UserTokenService
from stethoscope.audit.models import AuditEvent
from stethoscope.audit.services import AuditService
from stethoscope.db import utcnow
from stethoscope.ingest.models import Reading
from stethoscope.registry.tokens import GatewayTokenService, TokenCache
from tests.conftest import count, login

HTML = {"Accept": "text/html"}
REQUIRE_TOKEN = {"stethoscope.ingest.require_token": "true"}
# A route every role may read (VIEW) and one only admins may (ADMIN).
VIEW_URL = "/gateways"
ADMIN_URL = "/registry/badges"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def make_token(engine, username: str, expires_days=None) -> tuple[str, int]:
    """A token of ``username``, made as the console makes it: (token, id)."""
    with Session(engine) as session, session.begin():
        user = UserService(session, Passwords("cheapest")).require(username)
        audit = functools.partial(
            AuditService(session).record, actor="console:test", actor_type="console"
        )
        token, row = UserTokenService(session, audit).create(
            user, "console:test", expires_days=expires_days
        )
        return token, row.id


def set_user(engine, username: str, change) -> None:
    """``change(service, user)`` with UserService, committed."""
    with Session(engine) as session, session.begin():
        service = UserService(session, Passwords("cheapest"))
        change(service, service.require(username))


def set_token(engine, token_id: int, **values) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(UserToken).where(UserToken.id == token_id).values(**values)
        )


def stored(db, token_id: int) -> UserToken:
    db.rollback()  # see what the app committed since
    return db.get(UserToken, token_id)


def last_event_id(db) -> int:
    db.rollback()
    return db.scalar(select(func.max(AuditEvent.id))) or 0


def events_since(db, event_id: int) -> list[tuple]:
    db.rollback()
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.id > event_id).order_by(AuditEvent.id)
    )
    return [(e.actor, e.actor_type, e.action, e.target, e.details) for e in rows]


@pytest.fixture
def admin(make_app, create_user):
    """The production-like app, logged in as the admin "boss"."""
    app = make_app(**REQUIRE_TOKEN)
    login(app, *create_user("boss", "admin"))
    return app


@pytest.fixture
def machine(admin):
    """Another system of the home on the same app: no cookies, only tokens."""
    return webtest.TestApp(admin.app, extra_environ={"REMOTE_ADDR": "198.51.100.9"})


def create_on_page(admin, username: str, expires: str = "", status: int = 201):
    """Create a token on the user's admin page: (the response, the token)."""
    page = admin.get(f"/admin/users/{username}", headers=HTML)
    form = page.forms["create-user-token"]
    form["expires"] = expires
    response = form.submit(status=status)
    shown = response.html.select_one("#new-token")
    return response, shown.text if shown is not None else None


class TestActingAsTheUser:
    @pytest.mark.parametrize(
        ("role", "admin_status"), [("viewer", 403), ("staff", 403), ("admin", 200)]
    )
    def test_a_token_has_its_user_s_role(
        self, machine, create_user, engine, role, admin_status
    ):
        create_user("nurse-call", role)
        token, _ = make_token(engine, "nurse-call")
        response = machine.get(VIEW_URL, headers=bearer(token), status=200)
        assert "gateways" in response.json
        response = machine.get(ADMIN_URL, headers=bearer(token), status=admin_status)
        if admin_status == 403:
            assert response.json["message"] == "your role does not allow this"
        # No cookie is offered to a machine: it has nothing to carry.
        assert "Set-Cookie" not in response.headers

    @pytest.mark.parametrize(
        "token",
        ["stu_unknown", "stu_", "stu_" + "x" * 300, "stg_unknown"],
    )
    def test_an_unknown_token_is_401(self, machine, token):
        response = machine.get(VIEW_URL, headers=bearer(token), status=401)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="stethoscope"'

    def test_a_mistyped_token_is_401(self, machine, create_user, engine):
        create_user("nurse-call", "viewer")
        token, _ = make_token(engine, "nurse-call")
        machine.get(VIEW_URL, headers=bearer(token[:-1]), status=401)
        machine.get(VIEW_URL, headers=bearer(token + "x"), status=401)
        machine.get(VIEW_URL, headers=bearer(token), status=200)

    def test_a_role_change_counts_at_the_next_request(
        self, machine, create_user, engine
    ):
        create_user("boss2", "admin")  # so that the last admin may be demoted
        create_user("nurse-call", "viewer")
        token, _ = make_token(engine, "nurse-call")
        machine.get(ADMIN_URL, headers=bearer(token), status=403)
        set_user(engine, "nurse-call", lambda s, u: s.set_role(u, Role.ADMIN))
        machine.get(ADMIN_URL, headers=bearer(token), status=200)
        set_user(engine, "nurse-call", lambda s, u: s.set_role(u, Role.VIEWER))
        machine.get(ADMIN_URL, headers=bearer(token), status=403)
        machine.get(VIEW_URL, headers=bearer(token), status=200)

    def test_a_disabled_user_s_token_is_refused_until_enabled(
        self, machine, create_user, engine
    ):
        create_user("nurse-call", "viewer")
        token, _ = make_token(engine, "nurse-call")
        set_user(engine, "nurse-call", lambda s, u: s.set_disabled(u, True))
        response = machine.get(VIEW_URL, headers=bearer(token), status=401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        set_user(engine, "nurse-call", lambda s, u: s.set_disabled(u, False))
        machine.get(VIEW_URL, headers=bearer(token), status=200)

    def test_an_expired_token_is_refused(self, machine, create_user, engine, db):
        create_user("nurse-call", "viewer")
        token, token_id = make_token(engine, "nurse-call", expires_days=1)
        expires_at = stored(db, token_id).expires_at
        assert (
            datetime.timedelta(hours=23)
            < expires_at - utcnow()
            <= datetime.timedelta(days=1)
        )
        machine.get(VIEW_URL, headers=bearer(token), status=200)
        set_token(engine, token_id, expires_at=utcnow() - datetime.timedelta(seconds=1))
        response = machine.get(VIEW_URL, headers=bearer(token), status=401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_the_header_wins_over_a_session_cookie(self, admin, create_user, engine):
        """A browser logged in as an admin, sending a viewer's token, is the
        viewer; with a token that does not verify, it is nobody."""
        create_user("nurse-call", "viewer")
        token, _ = make_token(engine, "nurse-call")
        admin.get(ADMIN_URL, status=200)
        admin.get(ADMIN_URL, headers=bearer(token), status=403)
        admin.get(ADMIN_URL, headers=bearer("stu_unknown"), status=401)


class TestLastUsed:
    def test_written_at_first_use_then_at_most_once_a_minute(
        self, machine, create_user, engine, db
    ):
        create_user("nurse-call", "viewer")
        token, token_id = make_token(engine, "nurse-call")
        assert stored(db, token_id).last_used_at is None

        machine.get(VIEW_URL, headers=bearer(token), status=200)
        first = stored(db, token_id).last_used_at
        assert first is not None and utcnow() - first < datetime.timedelta(minutes=1)

        # Used 30 s ago: not written again.
        recent = utcnow() - datetime.timedelta(seconds=30)
        set_token(engine, token_id, last_used_at=recent)
        machine.get(VIEW_URL, headers=bearer(token), status=200)
        assert stored(db, token_id).last_used_at == recent

        # Used 2 minutes ago: written, by a reading request (its own
        # transaction) as by a writing one (the request's).
        for method in ("GET", "POST"):
            stale = utcnow() - datetime.timedelta(minutes=2)
            set_token(engine, token_id, last_used_at=stale)
            if method == "GET":
                machine.get(VIEW_URL, headers=bearer(token), status=200)
            else:
                machine.post("/logout", headers=bearer(token), status=303)
            assert stored(db, token_id).last_used_at > stale, method

    def test_a_refused_token_is_not_marked_used(self, machine, create_user, engine, db):
        create_user("nurse-call", "viewer")
        token, token_id = make_token(engine, "nurse-call")
        set_user(engine, "nurse-call", lambda s, u: s.set_disabled(u, True))
        machine.get(VIEW_URL, headers=bearer(token), status=401)
        assert stored(db, token_id).last_used_at is None


class TestCsrf:
    def test_a_bearer_post_needs_no_csrf_token(
        self, admin, machine, create_user, engine, db
    ):
        create_user("boss2", "admin")
        create_user("nurse", "staff")
        token, _ = make_token(engine, "boss2")
        before = last_event_id(db)
        machine.post(
            "/admin/users/nurse",
            {"change": "role", "role": "admin"},
            headers={**bearer(token), "Origin": "https://elsewhere.example"},
            extra_environ={"wsgi.url_scheme": "https"},
            status=303,
        )
        db.rollback()
        nurse = db.scalar(select(User).where(User.username == "nurse"))
        assert nurse.role == Role.ADMIN
        # Recorded as the token's user.
        assert events_since(db, before) == [
            ("boss2", "user", "user.role", "nurse", {"from": "staff", "to": "admin"})
        ]

    def test_a_cookie_post_still_needs_it(self, admin, create_user, db):
        create_user("nurse", "staff")
        response = admin.post(
            "/admin/users/nurse", {"change": "role", "role": "admin"}, status=403
        )
        assert "CSRF" in response.json["message"]
        db.rollback()
        nurse = db.scalar(select(User).where(User.username == "nurse"))
        assert nurse.role == Role.STAFF

    def test_a_cookie_post_with_a_bad_token_gets_no_exemption(
        self, admin, create_user, db
    ):
        """A header that does not verify makes the request anonymous: the
        session's rights are not borrowed by leaving out the CSRF token."""
        create_user("nurse", "staff")
        admin.post(
            "/admin/users/nurse",
            {"change": "role", "role": "admin"},
            headers=bearer("stu_forged"),
            status=401,
        )
        db.rollback()
        nurse = db.scalar(select(User).where(User.username == "nurse"))
        assert nurse.role == Role.STAFF


class TestSeparateFromGateways:
    @pytest.mark.parametrize("require_token", ["true", "false"])
    def test_a_user_token_cannot_post_readings(
        self, make_app, create_user, engine, db, require_token
    ):
        app = make_app(**{"stethoscope.ingest.require_token": require_token})
        create_user("boss", "admin")
        token, _ = make_token(engine, "boss")
        reading = {"badge_id": "B1", "pi_id": "gw-1", "beacons": {"a": -50}}
        response = app.post_json(
            "/rssi_readings", reading, headers=bearer(token), status=403
        )
        assert response.json["message"] == "posting readings needs a gateway token"
        batch = [{**reading, "observed_at": utcnow().isoformat()}]
        app.post_json("/rssi_readings", batch, headers=bearer(token), status=403)
        assert count(db, Reading) == 0

    @pytest.mark.parametrize("url", [VIEW_URL, ADMIN_URL, "/rssi_readings", "/"])
    def test_a_gateway_token_cannot_read(self, machine, engine, url):
        with Session(engine) as session, session.begin():
            token, _ = GatewayTokenService(session, TokenCache(0)).create("gw-1", "t")
        response = machine.get(url, headers=bearer(token), status=403)
        assert response.json["message"] == "your role does not allow this"


class TestAdminPages:
    def test_made_shown_once_and_kept_as_a_hash(self, admin, machine, create_user, db):
        create_user("nurse-call", "viewer")
        before = last_event_id(db)
        page, token = create_on_page(admin, "nurse-call", expires="30")

        assert token.startswith("stu_") and len(token) > 40
        assert page.headers["Cache-Control"] == "no-store"
        assert page.html.select_one("#token-header").text == (
            f"Authorization: Bearer {token}"
        )
        db.rollback()
        [row] = db.scalars(select(UserToken))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token.startswith(row.prefix) and row.created_by == "boss"
        assert row.user.username == "nurse-call"
        assert datetime.timedelta(days=29) < row.expires_at - utcnow()
        assert events_since(db, before) == [
            (
                "boss",
                "user",
                "user_token.create",
                "nurse-call",
                {
                    "token_id": row.id,
                    "prefix": row.prefix,
                    "expires_at": row.expires_at.isoformat(),
                    "role": "viewer",
                },
            )
        ]
        # It works, and is never shown again.
        machine.get(VIEW_URL, headers=bearer(token), status=200)
        user_page = admin.get("/admin/users/nurse-call", headers=HTML)
        assert token not in user_page.text
        listed = user_page.html.select_one(f"#api-tokens tr[data-token-id='{row.id}']")
        assert row.prefix in listed.text and "live" in listed.text
        assert token not in admin.get("/admin/audit", headers=HTML).text

    def test_revoked_on_the_page_and_refused_at_once(
        self, admin, machine, create_user, db
    ):
        create_user("nurse-call", "viewer")
        _, token = create_on_page(admin, "nurse-call")
        machine.get(VIEW_URL, headers=bearer(token), status=200)
        db.rollback()
        [row] = db.scalars(select(UserToken))
        before = last_event_id(db)

        user_page = admin.get("/admin/users/nurse-call", headers=HTML)
        revoke = user_page.forms[f"revoke-token-{row.id}"]
        page = revoke.submit(status=303).follow(headers=HTML)

        assert f"Revoked token {row.prefix}… of nurse-call." in page.text
        listed = page.html.select_one(f"#api-tokens tr[data-token-id='{row.id}']")
        assert "revoked by boss" in listed.text
        assert page.forms.get(f"revoke-token-{row.id}") is None
        row = stored(db, row.id)
        assert row.revoked_by == "boss" and row.revoked_at is not None
        details = {"token_id": row.id, "prefix": row.prefix, "expires_at": None}
        assert events_since(db, before) == [
            ("boss", "user", "user_token.revoke", "nurse-call", details)
        ]
        response = machine.get(VIEW_URL, headers=bearer(token), status=401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

        # The same button again, from a tab opened before: nothing recorded.
        before = last_event_id(db)
        page = revoke.submit(status=303).follow(headers=HTML)
        assert "was already revoked" in page.text
        assert events_since(db, before) == []

    def test_another_user_s_token_is_404_there(self, admin, create_user, engine, db):
        create_user("nurse-call", "viewer")
        create_user("care-records", "viewer")
        _, token_id = make_token(engine, "nurse-call")
        page = admin.get("/admin/users/care-records", headers=HTML)
        csrf = page.forms["create-user-token"]["csrf_token"].value
        for url in (
            f"/admin/users/care-records/tokens/{token_id}",
            "/admin/users/care-records/tokens/99999999999",
            f"/admin/users/nobody/tokens/{token_id}",
        ):
            admin.post(url, {"csrf_token": csrf}, headers=HTML, status=404)
        assert stored(db, token_id).revoked_at is None

    @pytest.mark.parametrize("expires", ["0", "3651", "ten", "-1", "1" * 30])
    def test_a_bad_expiry_is_refused(self, admin, create_user, db, expires):
        create_user("nurse-call", "viewer")
        before = last_event_id(db)
        page, token = create_on_page(admin, "nurse-call", expires, status=400)
        assert token is None
        assert "a whole number of days" in page.html.select_one("#expires-error").text
        assert count(db, UserToken) == 0
        assert events_since(db, before) == []

    def test_a_disabled_user_gets_no_token(self, admin, create_user, engine, db):
        create_user("nurse-call", "viewer")
        set_user(engine, "nurse-call", lambda s, u: s.set_disabled(u, True))
        page, token = create_on_page(admin, "nurse-call", status=400)
        assert token is None
        assert "is disabled" in page.html.select_one("#token-user-error").text
        assert count(db, UserToken) == 0
