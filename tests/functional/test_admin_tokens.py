"""/admin/gateway_tokens: gateway bearer tokens, created, rotated and revoked."""

import base64
import hashlib
import itertools

import pytest
import webtest
from sqlalchemy import func, select

from stethoscope.audit.models import AuditEvent
from stethoscope.registry.models import GatewayToken
from tests.conftest import login

HTML = {"Accept": "text/html"}
REQUIRE_TOKEN = {"stethoscope.ingest.require_token": "true"}
_badges = itertools.count()


def last_event_id(db) -> int:
    db.rollback()  # see what the app committed since
    return db.scalar(select(func.max(AuditEvent.id))) or 0


def events_since(db, event_id: int) -> list[tuple]:
    db.rollback()
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.id > event_id).order_by(AuditEvent.id)
    )
    return [(e.actor, e.actor_type, e.action, e.target, e.details) for e in rows]


def stored_tokens(db) -> list[GatewayToken]:
    db.rollback()
    return list(db.scalars(select(GatewayToken).order_by(GatewayToken.id)))


@pytest.fixture
def admin(make_app, create_user):
    """The app (gateways must send a token), logged in as the admin "boss"."""
    app = make_app(**REQUIRE_TOKEN)
    login(app, *create_user("boss", "admin"))
    return app


@pytest.fixture
def gateway(admin):
    """A gateway posting to the same app as ``admin``: no cookies, its own address.

    The same app, so the same token cache: a revocation takes effect at once
    in the process that made it.
    """
    return webtest.TestApp(admin.app, extra_environ={"REMOTE_ADDR": "198.51.100.7"})


def post_reading(gateway, token, status, pi_id="gw-1"):
    """POST a fresh (never a duplicate) reading of ``pi_id`` with ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reading = {"badge_id": f"B{next(_badges)}", "pi_id": pi_id, "beacons": {"a": -50}}
    return gateway.post_json("/rssi_readings", reading, headers=headers, status=status)


def create_token(admin, gateway_id="gw-1"):
    """Create a token through the page: (the 201 page, the plaintext token)."""
    form = admin.get("/admin/gateway_tokens", headers=HTML).forms["create-token"]
    form["gateway_id"] = gateway_id
    page = form.submit(status=201)
    return page, page.html.select_one("#new-token").text


def cookie_payloads(app) -> str:
    """Everything the app keeps in the browser's cookies, decoded."""
    texts = []
    for cookie in app.cookiejar:
        value = cookie.value.strip('"')
        texts.append(value)
        texts.append(
            base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode(
                "utf-8", "replace"
            )
        )
    return "\n".join(texts)


class TestAccess:
    def test_admin_gets_the_page(self, admin):
        page = admin.get("/admin/gateway_tokens", headers=HTML, status=200)
        assert page.html.select_one("#live-tokens tr.empty").text == "No live tokens."

    @pytest.mark.parametrize("role", ["viewer", "staff"])
    def test_other_roles_get_403(self, make_app, create_user, role):
        app = make_app()
        login(app, *create_user("someone", role))
        app.get("/admin/gateway_tokens", headers=HTML, status=403)
        assert app.get("/admin/gateway_tokens", status=403).json["error"] == (
            "forbidden"
        )

    def test_anonymous_browser_is_sent_to_log_in(self, anonymous):
        response = anonymous.get("/admin/gateway_tokens", headers=HTML, status=303)
        assert "/login?next=%2Fadmin%2Fgateway_tokens" in response.location

    def test_anonymous_api_client_gets_401(self, anonymous):
        anonymous.get("/admin/gateway_tokens", status=401)

    def test_other_roles_cannot_create_or_revoke(
        self, admin, make_app, create_user, db
    ):
        _, token = create_token(admin)
        app = make_app()
        login(app, *create_user("someone", "staff"))
        csrf = app.get("/", headers=HTML).html.find("input", {"name": "csrf_token"})
        before = last_event_id(db)
        app.post(
            "/admin/gateway_tokens",
            {"csrf_token": csrf["value"], "gateway_id": "gw-2"},
            status=403,
        )
        row = stored_tokens(db)[0]
        app.post(
            f"/admin/gateway_tokens/{row.id}", {"csrf_token": csrf["value"]}, status=403
        )
        assert [(t.gateway_id, t.revoked_at) for t in stored_tokens(db)] == [
            ("gw-1", None)
        ]
        assert events_since(db, before) == []

    def test_a_gateway_token_opens_no_admin_page(self, admin, gateway):
        _, token = create_token(admin)
        bearer = {"Authorization": f"Bearer {token}"}
        gateway.get("/admin/gateway_tokens", headers=bearer, status=403)
        gateway.post(
            "/admin/gateway_tokens", {"gateway_id": "x"}, headers=bearer, status=403
        )


class TestCreate:
    def test_the_token_is_shown_once_and_only_its_hash_is_kept(self, admin, db):
        before = last_event_id(db)
        page, token = create_token(admin, "gw-1")

        assert token.startswith("stg_") and len(token) > 40
        assert page.headers["Cache-Control"] == "no-store"
        header = page.html.select_one("#token-header").text
        assert header == f"Authorization: Bearer {token}"
        assert "shown only this once" in page.text

        [row] = stored_tokens(db)
        assert row.gateway_id == "gw-1"
        assert row.created_by == "boss"
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token.startswith(row.prefix)
        assert token not in repr(row.as_json())
        assert events_since(db, before) == [
            (
                "boss",
                "user",
                "token.create",
                "gw-1",
                {"token_id": row.id, "prefix": row.prefix},
            )
        ]
        # Not kept anywhere: not in the audit log, not in the session cookie,
        # not on any page after this one.
        db.rollback()
        for event in db.scalars(select(AuditEvent)):
            assert token not in repr(event.as_json())
        assert token not in cookie_payloads(admin)
        listing = admin.get("/admin/gateway_tokens", headers=HTML)
        assert token not in listing.text
        assert row.prefix in listing.html.select_one("#live-tokens").text
        assert token not in admin.get("/admin/audit", headers=HTML).text

    def test_a_new_token_works_for_its_own_gateway_only(self, admin, gateway):
        post_reading(gateway, None, status=401)
        _, token = create_token(admin, "gw-1")
        post_reading(gateway, token, status=201)
        assert "gw-2" in post_reading(gateway, token, status=403, pi_id="gw-2").text
        post_reading(gateway, token[:-1] + "x", status=401)

    @pytest.mark.parametrize("gateway_id", ["", "has space", "x" * 65])
    def test_a_bad_gateway_id_is_refused(self, admin, db, gateway_id):
        before = last_event_id(db)
        form = admin.get("/admin/gateway_tokens", headers=HTML).forms["create-token"]
        form["gateway_id"].force_value(gateway_id)
        page = form.submit(status=400)
        error = page.html.select_one("#gateway-id-error")
        assert "1 to 64 printable characters" in error.text
        assert page.html.select_one("#new-token") is None
        assert stored_tokens(db) == []
        assert events_since(db, before) == []

    @pytest.mark.parametrize("csrf_token", [None, "forged"])
    def test_without_the_csrf_token_nothing_is_created(self, admin, db, csrf_token):
        before = last_event_id(db)
        values = {"gateway_id": "gw-1"}
        if csrf_token:
            values["csrf_token"] = csrf_token
        response = admin.post("/admin/gateway_tokens", values, headers=HTML, status=403)
        assert "CSRF" in response.text
        assert "stg_" not in response.text
        assert stored_tokens(db) == []
        assert events_since(db, before) == []


class TestRevoke:
    def test_a_revoked_token_stops_working(self, admin, gateway, db):
        _, token = create_token(admin, "gw-1")
        post_reading(gateway, token, status=201)
        [row] = stored_tokens(db)
        before = last_event_id(db)

        listing = admin.get("/admin/gateway_tokens", headers=HTML)
        revoke = listing.forms[f"revoke-{row.id}"]
        page = revoke.submit(status=303).follow(headers=HTML)

        assert f"Revoked token {row.prefix}… of gateway gw-1." in page.text
        assert page.html.select_one("#live-tokens tr.empty") is not None
        revoked = page.html.select_one(f"#revoked-tokens tr[data-token-id='{row.id}']")
        assert "boss" in revoked.find_all("td")[3].text
        [row] = stored_tokens(db)
        assert row.revoked_by == "boss" and row.revoked_at is not None
        assert events_since(db, before) == [
            (
                "boss",
                "user",
                "token.revoke",
                "gw-1",
                {"token_id": row.id, "prefix": row.prefix},
            )
        ]
        response = post_reading(gateway, token, status=401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_without_the_cache_a_revocation_in_another_process_counts_at_once(
        self, make_app, create_user
    ):
        settings = {**REQUIRE_TOKEN, "stethoscope.ingest.token_cache_seconds": "0"}
        admin = make_app(**settings)
        login(admin, *create_user("boss", "admin"))
        gateway = make_app(**settings)
        _, token = create_token(admin)
        post_reading(gateway, token, status=201)
        page = admin.get("/admin/gateway_tokens", headers=HTML)
        page.forms[page.html.select_one("form.revoke")["id"]].submit(status=303)
        post_reading(gateway, token, status=401)

    def test_revoking_twice_records_it_once(self, admin, db):
        create_token(admin)
        listing = admin.get("/admin/gateway_tokens", headers=HTML)
        [row] = stored_tokens(db)
        form = listing.forms[f"revoke-{row.id}"]
        form.submit(status=303)
        before = last_event_id(db)
        # The same button again, from a tab opened before the first revoke.
        page = form.submit(status=303).follow(headers=HTML)
        assert "was already revoked" in page.text
        assert events_since(db, before) == []
        [again] = stored_tokens(db)
        assert again.revoked_at is not None

    def test_an_unknown_token_is_404(self, admin, db):
        listing = admin.get("/admin/gateway_tokens", headers=HTML)
        csrf = listing.forms["create-token"]["csrf_token"].value
        admin.post(
            "/admin/gateway_tokens/999", {"csrf_token": csrf}, headers=HTML, status=404
        )
        admin.post(
            "/admin/gateway_tokens/x", {"csrf_token": csrf}, headers=HTML, status=404
        )

    def test_without_the_csrf_token_nothing_is_revoked(self, admin, gateway, db):
        _, token = create_token(admin)
        [row] = stored_tokens(db)
        before = last_event_id(db)
        response = admin.post(
            f"/admin/gateway_tokens/{row.id}", {}, headers=HTML, status=403
        )
        assert "CSRF" in response.text
        assert stored_tokens(db)[0].revoked_at is None
        assert events_since(db, before) == []
        post_reading(gateway, token, status=201)


class TestRotation:
    def test_old_and_new_token_both_work_until_the_old_is_revoked(
        self, admin, gateway, db
    ):
        page = admin.get("/admin/gateway_tokens", headers=HTML)
        assert "To rotate a gateway's token" in page.text
        before = last_event_id(db)
        _, old = create_token(admin, "gw-1")
        _, other_gateway = create_token(admin, "gw-2")
        page, new = create_token(admin, "gw-1")
        assert new != old

        post_reading(gateway, old, status=201)
        post_reading(gateway, new, status=201)

        # The new token's page offers the gateway's other live token (and
        # only that one) for revoking.
        old_row, other_row, new_row = stored_tokens(db)
        offered = page.html.select("#other-tokens tbody tr")
        assert [tr["data-token-id"] for tr in offered] == [str(old_row.id)]
        assert "1 other live token" in page.text
        page.forms[f"revoke-{old_row.id}"].submit(status=303)

        post_reading(gateway, old, status=401)
        post_reading(gateway, new, status=201)
        post_reading(gateway, other_gateway, status=201, pi_id="gw-2")
        assert [action for _, _, action, _, _ in events_since(db, before)] == [
            "token.create",
            "token.create",
            "token.create",
            "token.revoke",
        ]

        listing = admin.get("/admin/gateway_tokens", headers=HTML)
        live = [
            tr["data-token-id"] for tr in listing.html.select("#live-tokens tbody tr")
        ]
        assert live == [str(new_row.id), str(other_row.id)]
        revoked = listing.html.select("#revoked-tokens tbody tr")
        assert [tr["data-token-id"] for tr in revoked] == [str(old_row.id)]
