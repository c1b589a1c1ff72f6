"""CSRF, sessions, login throttling, gateway tokens, headers, proxies, audit.

Who may call which route is tests/functional/test_security_matrix.py; this
module is about how each mechanism behaves, driven through the app.
"""

import datetime
import hashlib
import re
from html.parser import HTMLParser

import pytest
import webtest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stethoscope.accounts.models import AuthSession
from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.audit.models import AuditEvent
from stethoscope.db import utcnow
from stethoscope.ingest.models import Reading
from stethoscope.registry.models import GatewayToken
from stethoscope.registry.tokens import GatewayTokenService, TokenCache
from stethoscope.singletons import DATABASE, TOKEN_CACHE
from tests.conftest import PASSWORD, count, login
from tests.support.waiting import wait_for

COOKIE = "stethoscope_session"
HTTPS = {"wsgi.url_scheme": "https"}


def csrf_token(app, **kwargs) -> str:
    """The CSRF token of ``app``'s session (the login form shows it)."""
    return app.get("/login", **kwargs).forms["login"]["csrf_token"].value


def post_login(app, username, password, token=None, **kwargs):
    token = csrf_token(app) if token is None else token
    return app.post(
        "/login",
        {"username": username, "password": password, "csrf_token": token},
        **kwargs,
    )


def reading(badge_id="badge-17", pi_id="pi-kitchen", **extra) -> dict:
    return {"badge_id": badge_id, "pi_id": pi_id, "beacons": {"b-1": -60}, **extra}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def audit_events(engine, action=None) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def age_sessions(engine, **values) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(AuthSession).values(**values))


# --- CSRF ------------------------------------------------------------------------


class TestCsrf:
    def test_logout_without_a_token_is_refused_and_does_nothing(self, testapp):
        response = testapp.post("/logout", status=403)

        assert response.json["message"].startswith("missing or invalid CSRF token")
        testapp.get("/gateways", status=200)

    def test_logout_with_a_wrong_token_is_refused(self, testapp):
        testapp.post("/logout", {"csrf_token": "guessed"}, status=403)
        testapp.post("/logout", headers={"X-CSRF-Token": "guessed"}, status=403)
        testapp.get("/gateways", status=200)

    @pytest.mark.parametrize("where", ["form", "header"])
    def test_the_token_in_the_form_or_a_header_is_accepted(self, testapp, where):
        token = csrf_token(testapp)
        if where == "form":
            testapp.post("/logout", {"csrf_token": token}, status=303)
        else:
            testapp.post("/logout", headers={"X-CSRF-Token": token}, status=303)
        testapp.get("/gateways", status=401)

    def test_the_login_form_needs_its_token(self, anonymous, create_user):
        username, password = create_user()

        anonymous.post(
            "/login", {"username": username, "password": password}, status=403
        )
        anonymous.get("/gateways", status=401)
        assert not audit_events_of(anonymous, "login.success")

    def test_a_foreign_origin_is_refused_over_https(self, make_app, create_user):
        app = make_app()
        username, password = create_user()
        token = csrf_token(app, extra_environ=HTTPS)

        for headers in (
            {"Origin": "https://evil.example"},
            {"Referer": "https://evil.example/form"},
            {"Origin": "http://localhost"},  # not the same origin either
            {},  # over HTTPS, no Origin and no Referer proves nothing
        ):
            response = post_login(
                app,
                username,
                password,
                token=token,
                headers=headers,
                extra_environ=HTTPS,
                status=403,
            )
            assert response.json["message"] == "the request came from another site"
        app.get("/gateways", extra_environ=HTTPS, status=401)

        post_login(
            app,
            username,
            password,
            token=token,
            headers={"Origin": "https://localhost"},
            extra_environ=HTTPS,
            status=303,
        )
        token = csrf_token(app, extra_environ=HTTPS)
        app.post(
            "/logout",
            {"csrf_token": token},
            headers={"Origin": "https://evil.example"},
            extra_environ=HTTPS,
            status=403,
        )
        app.get("/gateways", extra_environ=HTTPS, status=200)


def audit_events_of(app, action):
    engine = app.app.registry[DATABASE].engine
    return audit_events(engine, action)


# --- Sessions ----------------------------------------------------------------------


def session_cookie(app) -> str:
    return app.cookies[COOKIE]


class TestSessions:
    def test_cookie_is_httponly_and_samesite_lax(self, anonymous):
        cookie = anonymous.get("/login").headers["Set-Cookie"]

        assert cookie.startswith(f"{COOKIE}=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/"} <= attributes
        assert "secure" not in attributes

    def test_cookie_is_secure_when_configured(self, make_app):
        app = make_app(**{"stethoscope.session.secure": "true"})
        cookie = app.get("/login", extra_environ=HTTPS).headers["Set-Cookie"]

        assert "; secure" in cookie.lower()

    def test_cookie_is_signed(self, testapp):
        value = session_cookie(testapp)
        testapp.set_cookie(COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))

        testapp.get("/gateways", status=401)

    def test_session_id_and_csrf_token_rotate_at_login(
        self, anonymous, create_user, engine
    ):
        username, password = create_user()
        before_token = csrf_token(anonymous)
        before_cookie = session_cookie(anonymous)

        post_login(anonymous, username, password, token=before_token, status=303)

        after_cookie = session_cookie(anonymous)
        after_token = csrf_token(anonymous)
        assert after_cookie != before_cookie
        assert after_token != before_token
        # The token of the anonymous session is worth nothing now.
        anonymous.post("/logout", {"csrf_token": before_token}, status=403)
        anonymous.get("/gateways", status=200)

        # Nor is the cookie captured (or planted) before the login.
        attacker = webtest.TestApp(anonymous.app)
        attacker.set_cookie(COOKIE, before_cookie)
        attacker.get("/gateways", status=401)

    def test_logout_ends_the_session_on_the_server(self, testapp):
        captured = session_cookie(testapp)
        testapp.post("/logout", {"csrf_token": csrf_token(testapp)}, status=303)

        replay = webtest.TestApp(testapp.app)
        replay.set_cookie(COOKIE, captured)
        replay.get("/gateways", status=401)

    def test_idle_session_expires(self, make_app, create_user, engine):
        app = make_app(**{"stethoscope.session.idle_minutes": "2"})
        login(app, *create_user())

        # Within the idle time: still in, and the visit counts as activity.
        age_sessions(engine, last_seen_at=utcnow() - datetime.timedelta(seconds=90))
        app.get("/gateways", status=200)
        with Session(engine) as session:
            seen = session.scalar(select(AuthSession.last_seen_at))
        assert utcnow() - seen < datetime.timedelta(seconds=30)

        age_sessions(engine, last_seen_at=utcnow() - datetime.timedelta(seconds=121))
        app.get("/gateways", status=401)
        response = app.get("/", headers={"Accept": "text/html"}, status=303)
        assert response.location == "http://localhost/login?next=%2F"

    def test_an_unsafe_request_refreshes_the_idle_timer_in_its_own_transaction(
        self, make_app, create_user, engine
    ):
        # A POST already holds SQLite's write lock when the session is looked
        # up: refreshing the timer in a second transaction would wait for
        # itself until busy_timeout, then 503.
        app = make_app(**{"stethoscope.sqlite.busy_timeout_ms": "200"})
        login(app, *create_user("boss", "admin"))
        token = csrf_token(app)  # a GET: it refreshes the timer itself
        age_sessions(engine, last_seen_at=utcnow() - datetime.timedelta(seconds=90))
        app.post(
            "/admin/users",
            {
                "csrf_token": token,
                "username": "newcomer",
                "role": "viewer",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
            status=303,
        )
        with Session(engine) as session:
            seen = session.scalar(select(AuthSession.last_seen_at))
        assert utcnow() - seen < datetime.timedelta(seconds=30)

    def test_a_login_forgets_expired_sessions(self, make_app, create_user, engine):
        username, password = create_user()
        login(make_app(), username, password)
        age_sessions(engine, last_seen_at=utcnow() - datetime.timedelta(hours=1))
        login(make_app(), username, password)
        with Session(engine) as session:
            seen = session.scalars(select(AuthSession.last_seen_at)).all()
        assert len(seen) == 1
        assert utcnow() - seen[0] < datetime.timedelta(minutes=1)

    def test_session_ends_after_its_lifetime_however_active(
        self, make_app, create_user, engine
    ):
        app = make_app(**{"stethoscope.session.lifetime_hours": "1"})
        login(app, *create_user())

        age_sessions(engine, created_at=utcnow() - datetime.timedelta(minutes=61))
        app.get("/gateways", status=401)

    @pytest.mark.parametrize("change", ["password", "disable", "role"])
    def test_account_changes_end_sessions(self, make_app, create_user, engine, change):
        app = make_app()
        create_user("boss", "admin")  # so that the viewer is not the last admin
        username, password = create_user("someone", "admin")
        login(app, username, password)
        app.get("/admin/users", status=200)

        with Session(engine) as session, session.begin():
            service = UserService(session, Passwords("cheapest"))
            user = service.require(username)
            if change == "password":
                service.set_password(user, "another long password")
            elif change == "disable":
                service.set_disabled(user, True)
            else:
                service.set_role(user, "viewer")
        app.get("/gateways", status=401)


# --- Login throttling ---------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def backend_settings(request):
    """Settings for the login limiter: in this process, or in Redis."""
    if request.param == "memory":
        return {}
    return {"stethoscope.redis_url": request.getfixturevalue("redis_url")}


class TestLockout:
    def test_user_is_locked_out_and_let_in_after_the_window(
        self, make_app, create_user, backend_settings
    ):
        settings = {
            **backend_settings,
            "stethoscope.login.max_failures_per_user": "3",
            "stethoscope.login.window_seconds": "2",
        }
        app = make_app(**settings)
        username, password = create_user()
        for _ in range(3):
            post_login(app, username, "wrong password", status=401)

        # Refused whatever the password, and from any address.
        response = post_login(app, username, password, status=429)
        assert response.headers["Retry-After"] in {"1", "2"}
        assert response.json["error"] == "too_many_requests"
        other = make_app(**settings)
        if backend_settings:  # Redis: every process sees the same count
            post_login(
                other,
                username,
                password,
                status=429,
                extra_environ={"REMOTE_ADDR": "198.51.100.1"},
            )
        app.get("/gateways", status=401)

        def let_in():
            return post_login(app, username, password, status="*").status_int == 303

        wait_for(let_in, "the lockout to expire", timeout=10, interval=0.2)
        app.get("/gateways", status=200)

    def test_address_is_locked_out_for_every_username(
        self, make_app, create_user, backend_settings
    ):
        app = make_app(
            **backend_settings,
            **{
                "stethoscope.login.max_failures_per_user": "100",
                "stethoscope.login.max_failures_per_ip": "3",
            },
        )
        username, password = create_user()
        for name in ("alice", "bob", "carol"):
            post_login(app, name, "wrong password", status=401)

        response = post_login(app, username, password, status=429)
        assert int(response.headers["Retry-After"]) > 0
        # The same user from another address is let in.
        elsewhere = make_app(**backend_settings)
        elsewhere.extra_environ = {"REMOTE_ADDR": "198.51.100.1"}
        post_login(elsewhere, username, password, status=303)

    def test_success_clears_the_user_s_failures(
        self, make_app, create_user, backend_settings
    ):
        app = make_app(
            **backend_settings, **{"stethoscope.login.max_failures_per_user": "3"}
        )
        username, password = create_user()
        for _ in range(2):
            post_login(app, username, "wrong password", status=401)
        post_login(app, username, password, status=303)
        for _ in range(2):
            post_login(app, username, "wrong password", status=401)
        post_login(app, username, password, status=303)

    def test_html_form_shows_the_refusal_with_retry_after(
        self, make_app, create_user, backend_settings
    ):
        app = make_app(
            **backend_settings, **{"stethoscope.login.max_failures_per_user": "1"}
        )
        username, password = create_user()
        post_login(app, username, "wrong password", status=401)

        response = post_login(
            app, username, password, headers={"Accept": "text/html"}, status=429
        )
        assert response.content_type == "text/html"
        assert "try again in" in response.text
        assert response.headers["Retry-After"]

    def test_expiring_the_redis_key_lets_the_user_in(
        self, make_app, create_user, redis_url, redis_server
    ):
        app = make_app(
            **{
                "stethoscope.redis_url": redis_url,
                "stethoscope.login.max_failures_per_user": "2",
                "stethoscope.login.window_seconds": "3600",
            }
        )
        username, password = create_user()
        for _ in range(2):
            post_login(app, username, "wrong password", status=401)
        post_login(app, username, password, status=429)

        client = redis_server.client()
        digest = hashlib.sha256(username.encode()).hexdigest()
        key = f"stethoscope:ratelimit:login-user:{digest}"
        assert 3500 < client.ttl(key) <= 3600
        client.delete(key)
        client.close()

        post_login(app, username, password, status=303)

    def test_without_redis_it_still_throttles_in_memory(
        self, make_app, create_user, tmp_path
    ):
        app = make_app(
            **{
                "stethoscope.redis_url": f"unix://{tmp_path}/no-redis.sock",
                "stethoscope.login.max_failures_per_user": "2",
            }
        )
        username, password = create_user()
        for _ in range(2):
            post_login(app, username, "wrong password", status=401)
        post_login(app, username, password, status=429)


# --- Gateway tokens -----------------------------------------------------------------


@pytest.fixture
def token_app(make_app):
    return make_app(**{"stethoscope.ingest.require_token": "true"})


def new_token(engine, gateway_id="pi-kitchen") -> tuple[str, int]:
    with Session(engine) as session, session.begin():
        token, row = GatewayTokenService(session, TokenCache(0)).create(
            gateway_id, "test"
        )
        return token, row.id


def revoke(engine, token_id, cache=None) -> None:
    with Session(engine) as session, session.begin():
        GatewayTokenService(session, cache or TokenCache(0)).revoke(token_id, "test")


class TestGatewayTokens:
    def test_only_the_hash_is_stored(self, engine):
        token, token_id = new_token(engine)

        assert token.startswith("stg_") and len(token) > 40
        with Session(engine) as session:
            row = session.get(GatewayToken, token_id)
            assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
            assert token not in repr(row.as_json())
            assert token.startswith(row.prefix) and len(row.prefix) < 12

    def test_a_gateway_posts_its_own_readings(self, token_app, engine):
        token, _ = new_token(engine)

        stored = token_app.post_json(
            "/rssi_readings", reading(), headers=bearer(token), status=201
        ).json
        assert stored["pi_id"] == "pi-kitchen"
        batch = [reading("badge-2", observed_at=utcnow().isoformat())]
        result = token_app.post_json(
            "/rssi_readings", batch, headers=bearer(token), status=200
        ).json
        assert result["created"] == 1

    @pytest.mark.parametrize("batch", [False, True])
    def test_another_gateway_s_readings_are_403(self, token_app, engine, batch):
        token, _ = new_token(engine, "pi-kitchen")
        if batch:
            now = utcnow().isoformat()
            body = [
                reading("badge-1", observed_at=now),
                reading("badge-2", "pi-hall", observed_at=now),
            ]
        else:
            body = reading(pi_id="pi-hall")

        response = token_app.post_json(
            "/rssi_readings", body, headers=bearer(token), status=403
        )
        assert "pi-kitchen" in response.json["message"]
        assert "pi-hall" in response.json["message"]
        with Session(engine) as session:
            assert count(session, Reading) == 0

    def test_rotation_old_and_new_work_until_the_old_is_revoked(
        self, token_app, engine
    ):
        old, old_id = new_token(engine)
        new, _ = new_token(engine)
        token_app.post_json(
            "/rssi_readings", reading("badge-1"), headers=bearer(old), status=201
        )
        token_app.post_json(
            "/rssi_readings", reading("badge-2"), headers=bearer(new), status=201
        )

        # Revoked by this process (an admin's request): at once, cache or not.
        revoke(engine, old_id, cache=token_app.app.registry[TOKEN_CACHE])

        response = token_app.post_json(
            "/rssi_readings", reading("badge-3"), headers=bearer(old), status=401
        )
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="stethoscope"'
        token_app.post_json(
            "/rssi_readings", reading("badge-4"), headers=bearer(new), status=201
        )

    def test_revocation_elsewhere_takes_effect_after_the_cache(self, make_app, engine):
        app = make_app(
            **{
                "stethoscope.ingest.require_token": "true",
                "stethoscope.ingest.token_cache_seconds": "0",
            }
        )
        token, token_id = new_token(engine)
        app.post_json("/rssi_readings", reading("b-1"), headers=bearer(token))

        revoke(engine, token_id)  # another process: not this app's cache

        app.post_json(
            "/rssi_readings", reading("b-2"), headers=bearer(token), status=401
        )

    def test_tokens_made_and_revoked_on_the_admin_pages(
        self, token_app, create_user, engine
    ):
        login(token_app, *create_user("admin", "admin"))
        form = token_app.get("/admin/gateway_tokens").forms["create-token"]
        form["gateway_id"] = "pi-hall"
        page = form.submit(status=201)
        token = re.search(r"stg_[A-Za-z0-9_-]{40,}", page.text).group(0)
        gateway = webtest.TestApp(token_app.app)

        gateway.post_json(
            "/rssi_readings", reading(pi_id="pi-hall"), headers=bearer(token)
        )
        with Session(engine) as session:
            token_id = session.scalar(select(GatewayToken.id))
        token_app.post(
            f"/admin/gateway_tokens/{token_id}",
            {"csrf_token": csrf_token(token_app)},
            status=303,
        )
        gateway.post_json(
            "/rssi_readings",
            reading("badge-2", "pi-hall"),
            headers=bearer(token),
            status=401,
        )
        assert [e.action for e in audit_events(engine) if e.action[:6] == "token."] == [
            "token.create",
            "token.revoke",
        ]

    @pytest.mark.parametrize(
        "authorization",
        [
            "Basic cGk6cGFzc3dvcmQ=",
            "Bearer",
            "Bearer ",
            "Bearer not-a-token",
            "Bearer stg_never-issued-never-issued-never-issued",
            "Bearer stg_" + "x" * 200,
        ],
    )
    def test_bad_authorization_is_401(self, make_app, authorization):
        # Also where ingest is open: a bad token must not pass as no token.
        for require in ("true", "false"):
            app = make_app(**{"stethoscope.ingest.require_token": require})
            response = app.post_json(
                "/rssi_readings",
                reading(),
                headers={"Authorization": authorization},
                status=401,
            )
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_revoked_token_is_refused_where_ingest_is_open(self, make_app, engine):
        app = make_app(**{"stethoscope.ingest.require_token": "false"})
        token, token_id = new_token(engine)
        revoke(engine, token_id)

        app.post_json("/rssi_readings", reading(), headers=bearer(token), status=401)
        app.post_json("/rssi_readings", reading(), status=201)

    def test_staff_cookie_is_refused_when_tokens_are_required(
        self, token_app, create_user
    ):
        login(token_app, *create_user("admin", "admin"))

        response = token_app.post_json("/rssi_readings", reading(), status=403)
        assert response.json["message"] == "posting readings needs a gateway token"

    def test_staff_cookie_may_post_where_ingest_is_open(self, testapp):
        testapp.post_json("/rssi_readings", reading(), status=201)


# --- Security headers ---------------------------------------------------------------


def assert_security_headers(response, https=False):
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";")
    )
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in {"same-origin", "no-referrer"}
    assert headers["X-Frame-Options"] == "DENY"
    # Each once: a duplicated header is combined, or refused, by browsers.
    for name in ("Content-Security-Policy", "X-Content-Type-Options"):
        assert len(headers.getall(name)) == 1, name
    if https:
        assert headers["Strict-Transport-Security"].startswith("max-age=")
    else:
        assert "Strict-Transport-Security" not in headers


class TestHeaders:
    @pytest.mark.parametrize(
        "method, url, accept, status",
        [
            ("GET", "/", "text/html", 200),
            ("GET", "/login", "text/html", 200),
            ("GET", "/docs", "text/html", 200),
            ("GET", "/admin/users", "text/html", 403),
            ("GET", "/nowhere", "text/html", 404),
            ("GET", "/gateways", "application/json", 200),
            ("GET", "/health", "application/json", 200),
            ("GET", "/openapi.json", "application/json", 200),
            ("GET", "/nowhere", "application/json", 404),
            ("DELETE", "/gateways", "application/json", 405),
            ("POST", "/logout", "application/json", 403),
            ("GET", "/rssi_readings?limit=0", "application/json", 400),
        ],
    )
    def test_on_html_and_json_responses(self, testapp, method, url, accept, status):
        response = testapp.request(
            url, method=method, headers={"Accept": accept}, status=status
        )

        assert response.content_type == accept
        assert_security_headers(response)
        assert response.headers["Cache-Control"] == "no-store"

    def test_on_refusals_redirects_and_ingest(self, anonymous, make_app):
        responses = [
            anonymous.get("/gateways", status=401),
            anonymous.get("/", headers={"Accept": "text/html"}, status=303),
            anonymous.post_json("/rssi_readings", reading(), status=201),
            anonymous.post_json("/rssi_readings", reading(), status=409),
            anonymous.get("/static/stethoscope.css", status=200),
        ]
        for response in responses:
            assert_security_headers(response)
        assert "no-store" not in responses[-1].headers["Cache-Control"]

    def test_hsts_over_https(self, testapp):
        assert_security_headers(testapp.get("/health", extra_environ=HTTPS), https=True)

    def test_on_429(self, make_app, create_user):
        app = make_app(**{"stethoscope.login.max_failures_per_user": "1"})
        username, password = create_user()
        post_login(app, username, "wrong password", status=401)
        assert_security_headers(post_login(app, username, password, status=429))

    def test_on_503(self, make_app, tmp_path):
        app = make_app(**{"sqlalchemy.url": f"sqlite:///{tmp_path}/no/such.sqlite"})
        assert_security_headers(app.get("/health", status=503))


class InlineCode(HTMLParser):
    """What a strict CSP would block: inline scripts, handlers and styles."""

    def __init__(self, html):
        super().__init__()
        self.found = []
        self._script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs:
            self._script = True
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs.items():
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")

    def handle_data(self, data):
        if self._script and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False


def test_pages_need_no_inline_script_or_style(make_app, create_user):
    """The CSP forbids inline script and style: the pages must not need them."""
    app = make_app()
    pages = ["/login", "/docs", "/docs/rssi_readings"]
    found = {url: InlineCode(app.get(url).text).found for url in pages}
    login(app, *create_user("admin", "admin"))
    create_user("viewer", "viewer")
    for url in [
        "/",
        "/admin/users",
        "/admin/users/viewer",
        "/admin/gateway_tokens",
        "/admin/audit",
    ]:
        found[url] = InlineCode(
            app.get(url, headers={"Accept": "text/html"}).text
        ).found
    assert {url: items for url, items in found.items() if items} == {}


# --- Proxies and the ingest allowlist -----------------------------------------------


PROXY = {"REMOTE_ADDR": "127.0.0.1"}


class TestForwardedFor:
    def test_believed_from_a_trusted_proxy_only(self, make_app, engine):
        app = make_app(**{"stethoscope.trusted_proxies": "127.0.0.1"})

        post_login(
            app,
            "nobody",
            "wrong",
            headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
            extra_environ=PROXY,
            status=401,
        )
        post_login(
            app,
            "nobody",
            "wrong",
            headers={"X-Forwarded-For": "198.51.100.7"},
            status=401,
        )
        assert [e.ip for e in audit_events(engine, "login.failure")] == [
            "198.51.100.7",  # the address our proxy saw, not the client's claim
            "192.0.2.10",  # a client's own header proves nothing
        ]

    def test_a_forged_header_does_not_dodge_the_address_lockout(
        self, make_app, create_user
    ):
        app = make_app(
            **{
                "stethoscope.trusted_proxies": "127.0.0.1",
                "stethoscope.login.max_failures_per_ip": "2",
            }
        )
        username, password = create_user()
        for n in range(2):
            post_login(
                app,
                f"user{n}",
                "wrong",
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                status=401,
            )
        post_login(
            app,
            username,
            password,
            headers={"X-Forwarded-For": "203.0.113.99"},
            status=429,
        )


class TestIngestAllowlist:
    @pytest.fixture
    def open_app(self, make_app):
        return make_app(
            **{
                "stethoscope.ingest.require_token": "false",
                "stethoscope.ingest.allow_ips": "10.0.0.0/8, 2001:db8::/32",
                "stethoscope.trusted_proxies": "127.0.0.1",
            }
        )

    @pytest.mark.parametrize(
        "environ, headers, status",
        [
            ({"REMOTE_ADDR": "10.1.2.3"}, {}, 201),
            ({"REMOTE_ADDR": "2001:db8::7"}, {}, 201),
            ({"REMOTE_ADDR": "192.0.2.10"}, {}, 401),
            (PROXY, {"X-Forwarded-For": "10.1.2.3"}, 201),
            (PROXY, {"X-Forwarded-For": "192.0.2.10"}, 401),
            (PROXY, {}, 401),  # the proxy itself is not a gateway
            ({"REMOTE_ADDR": "192.0.2.10"}, {"X-Forwarded-For": "10.1.2.3"}, 401),
        ],
    )
    def test_only_allowed_addresses_post_without_a_token(
        self, open_app, environ, headers, status
    ):
        open_app.post_json(
            "/rssi_readings",
            reading(),
            headers=headers,
            extra_environ=environ,
            status=status,
        )

    def test_a_token_works_from_anywhere(self, open_app, engine):
        token, _ = new_token(engine)
        open_app.post_json(
            "/rssi_readings",
            reading(),
            headers=bearer(token),
            extra_environ={"REMOTE_ADDR": "192.0.2.10"},
            status=201,
        )

    def test_a_staff_cookie_from_outside_is_refused(self, open_app, create_user):
        login(open_app, *create_user())
        open_app.post_json("/rssi_readings", reading(), status=403)


# --- Audit -----------------------------------------------------------------------


class TestAudit:
    def test_logins_logouts_and_refusals_are_recorded(
        self, make_app, create_user, engine
    ):
        app = make_app(**{"stethoscope.login.max_failures_per_user": "2"})
        username, password = create_user()
        post_login(app, username, password, status=303)
        app.post("/logout", {"csrf_token": csrf_token(app)}, status=303)
        post_login(app, username, "wrong", status=401)
        post_login(app, "Nobody", "wrong", status=401)
        post_login(app, username, "wrong", status=401)

        events = [
            (e.action, e.actor, e.actor_type, e.target, e.ip)
            for e in audit_events(engine)
        ]
        ip = "192.0.2.10"
        assert events == [
            ("login.success", username, "user", username, ip),
            ("logout", username, "user", username, ip),
            ("login.failure", username, "anonymous", username, ip),
            ("login.failure", "nobody", "anonymous", "nobody", ip),
            ("login.failure", username, "anonymous", username, ip),
        ]
        # Never the password, right or wrong.
        for event in audit_events(engine):
            assert password not in repr(event.as_json())
            assert "wrong" not in repr(event.details or {})

    def test_a_throttled_login_is_recorded(self, make_app, create_user, engine):
        app = make_app(**{"stethoscope.login.max_failures_per_user": "1"})
        username, password = create_user()
        post_login(app, username, "wrong", status=401)
        post_login(app, username, password, status=429)

        assert [(e.action, e.target) for e in audit_events(engine)] == [
            ("login.failure", username),
            ("login.throttled", username),
        ]

    def test_user_changes_are_recorded(self, make_app, create_user, engine):
        app = make_app()
        login(app, *create_user("admin", "admin"))
        app.post(
            "/admin/users",
            {
                "csrf_token": csrf_token(app),
                "username": "nurse",
                "role": "viewer",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
            status=303,
        )
        app.post(
            "/admin/users/nurse",
            {"csrf_token": csrf_token(app), "change": "role", "role": "staff"},
            status=303,
        )

        events = [
            (e.action, e.actor, e.actor_type, e.target)
            for e in audit_events(engine)
            if e.action.startswith("user.")
        ]
        assert events == [
            ("user.create", "admin", "user", "nurse"),
            ("user.role", "admin", "user", "nurse"),
        ]
        for event in audit_events(engine):
            assert PASSWORD not in repr(event.as_json())


# --- Credentials while the database is down -------------------------------------


def test_credentials_with_the_database_down_are_503_not_500(
    testapp, make_app, tmp_path
):
    """Checking a token or a session needs the database: 503, as for the rest."""
    down = make_app(**{"sqlalchemy.url": f"sqlite:///{tmp_path}/no/such.sqlite"})

    response = down.post_json(
        "/rssi_readings",
        reading(),
        headers=bearer("stg_" + "x" * 43),
        status=503,
    )
    assert response.headers["Retry-After"]
    down.set_cookie(COOKIE, session_cookie(testapp))
    assert down.get("/gateways", status=503).headers["Retry-After"]
