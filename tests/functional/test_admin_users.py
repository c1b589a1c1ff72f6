"""/admin/users and /admin/users/{username}: staff accounts, managed by admins."""

import pytest
from sqlalchemy import func, select

from stethoscope.accounts.models import AuthSession, Role, User
from stethoscope.audit.models import AuditEvent
from tests.conftest import PASSWORD, login

NEW_PASSWORD = "a brand new passphrase"
HTML = {"Accept": "text/html"}


def last_event_id(db) -> int:
    db.rollback()  # see what the app committed since
    return db.scalar(select(func.max(AuditEvent.id))) or 0


def events_since(db, event_id: int) -> list[tuple]:
    db.rollback()
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.id > event_id).order_by(AuditEvent.id)
    )
    return [(e.actor, e.actor_type, e.action, e.target, e.details) for e in rows]


def get_user(db, username) -> User | None:
    db.rollback()
    return db.scalar(select(User).where(User.username == username))


def usernames(db) -> list[str]:
    db.rollback()
    return list(db.scalars(select(User.username).order_by(User.username)))


def sessions_of(db, username) -> int:
    db.rollback()
    return db.scalar(
        select(func.count())
        .select_from(AuthSession)
        .join(User)
        .where(User.username == username)
    )


@pytest.fixture
def nurse(make_app, create_user):
    """A staff member "nurse", logged in in a browser of their own."""
    app = make_app()
    login(app, *create_user("nurse", "staff"))
    return app


def submit(form, status=303, **values):
    for name, value in values.items():
        form[name] = value
    return form.submit(status=status)


class TestAccess:
    PATHS = ["/admin/users", "/admin/users/boss"]

    @pytest.mark.parametrize("path", PATHS)
    def test_admin_gets_the_page(self, admin, path):
        response = admin.get(path, headers=HTML, status=200)
        assert response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"

    @pytest.mark.parametrize("role", ["viewer", "staff"])
    @pytest.mark.parametrize("path", PATHS)
    def test_other_roles_get_403(self, make_app, create_user, role, path):
        create_user("boss", "admin")
        app = make_app()
        login(app, *create_user("someone", role))
        response = app.get(path, headers=HTML, status=403)
        assert "your role does not allow this" in response.text
        assert app.get(path, status=403).json["error"] == "forbidden"

    @pytest.mark.parametrize("path", PATHS)
    def test_anonymous_browser_is_sent_to_log_in(self, anonymous, path):
        response = anonymous.get(path, headers=HTML, status=303)
        assert response.location.endswith(f"/login?next={path.replace('/', '%2F')}")

    @pytest.mark.parametrize("path", PATHS)
    def test_anonymous_api_client_gets_401(self, anonymous, path):
        assert anonymous.get(path, status=401).json["error"] == "unauthorized"

    def test_viewer_cannot_post_even_with_a_csrf_token(self, make_app, create_user, db):
        create_user("boss", "admin")
        app = make_app()
        login(app, *create_user("someone", "viewer"))
        token = app.get("/", headers=HTML).html.find("input", {"name": "csrf_token"})
        before = last_event_id(db)
        app.post(
            "/admin/users",
            {
                "csrf_token": token["value"],
                "username": "intruder",
                "role": "admin",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
            status=403,
        )
        app.post(
            "/admin/users/boss",
            {"csrf_token": token["value"], "change": "enabled", "enabled": "false"},
            status=403,
        )
        assert get_user(db, "intruder") is None
        assert not get_user(db, "boss").disabled
        assert events_since(db, before) == []

    def test_anonymous_post_is_401(self, anonymous, create_user, db):
        create_user("boss", "admin")
        anonymous.post(
            "/admin/users/boss", {"change": "sessions"}, headers=HTML, status=401
        )


class TestList:
    def test_lists_every_user(self, admin, create_user):
        create_user("nurse", "staff")
        create_user("visitor", "viewer")
        page = admin.get("/admin/users", headers=HTML)
        rows = page.html.select("#users tbody tr")
        assert [row["data-username"] for row in rows] == ["boss", "nurse", "visitor"]
        cells = [cell.get_text(strip=True) for cell in rows[1].find_all("td")]
        assert cells[:4] == ["nurse", "staff", "enabled", "never"]
        assert cells[4].endswith(" UTC")
        # boss has just logged in.
        assert rows[0].find_all("td")[3].get_text(strip=True).endswith(" UTC")
        link = rows[1].find("a")["href"]
        assert link.endswith("/admin/users/nurse")


class TestCreate:
    def test_adds_a_user_who_can_log_in(self, admin, make_app, db):
        before = last_event_id(db)
        form = admin.get("/admin/users", headers=HTML).forms["add-user"]
        response = submit(
            form,
            username="  Night.Nurse ",
            role="staff",
            password=NEW_PASSWORD,
            confirm=NEW_PASSWORD,
        )
        assert response.location.endswith("/admin/users")
        page = response.follow(headers=HTML)
        assert "Added night.nurse (staff)." in page.html.select_one(".flashes").text
        assert "night.nurse" in [
            row["data-username"] for row in page.html.select("#users tbody tr")
        ]
        # The flash is shown once.
        assert admin.get("/admin/users", headers=HTML).html.select(".flash") == []

        user = get_user(db, "night.nurse")
        assert user.role == Role.STAFF and not user.disabled
        assert NEW_PASSWORD not in user.password_hash
        assert events_since(db, before) == [
            ("boss", "user", "user.create", "night.nurse", {"role": "staff"})
        ]
        login(make_app(), "night.nurse", NEW_PASSWORD)

    @pytest.mark.parametrize(
        ("values", "field", "message"),
        [
            ({"username": "boss"}, "username", "'boss' is taken"),
            ({"username": "x"}, "username", "2 to 64 characters"),
            ({"username": "has space"}, "username", "2 to 64 characters"),
            ({"password": "short", "confirm": "short"}, "password", "at least 10"),
            ({"confirm": "something else"}, "confirm", "the two passwords differ"),
        ],
    )
    def test_refusal_is_shown_next_to_the_field(
        self, admin, db, values, field, message
    ):
        before = last_event_id(db)
        form = admin.get("/admin/users", headers=HTML).forms["add-user"]
        values = {
            "username": "new-user",
            "role": "viewer",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            **values,
        }
        page = submit(form, status=400, **values)
        error = page.html.select_one(f"#{field}-error")
        assert message in error.text
        assert page.html.select_one(f"[aria-describedby='{field}-error']") is not None
        # The form keeps what was typed, except passwords.
        refilled = page.forms["add-user"]
        assert refilled["username"].value == values["username"].strip().lower()
        assert refilled["password"].value == ""
        assert refilled["confirm"].value == ""
        assert usernames(db) == ["boss"]
        assert events_since(db, before) == []

    def test_unknown_role_is_refused(self, admin, db):
        form = admin.get("/admin/users", headers=HTML).forms["add-user"]
        form["username"] = "new-user"
        form["password"] = form["confirm"] = NEW_PASSWORD
        form["role"].force_value("superuser")
        page = form.submit(status=400)
        assert "must be one of viewer, staff, admin" in page.text
        assert get_user(db, "new-user") is None

    @pytest.mark.parametrize("csrf_token", [None, "", "forged"])
    def test_without_the_csrf_token_nothing_is_created(self, admin, db, csrf_token):
        before = last_event_id(db)
        values = {
            "username": "new-user",
            "role": "admin",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        }
        if csrf_token is not None:
            values["csrf_token"] = csrf_token
        response = admin.post("/admin/users", values, headers=HTML, status=403)
        assert "CSRF" in response.text
        assert admin.post("/admin/users", values, status=403).json["message"]
        assert get_user(db, "new-user") is None
        assert events_since(db, before) == []


class TestUserPage:
    def test_shows_the_account(self, admin, create_user):
        create_user("nurse", "staff")
        page = admin.get("/admin/users/nurse", headers=HTML)
        assert page.html.select_one("h1").text == "nurse"
        assert page.html.select_one("#user-role").text == "staff"
        assert page.html.select_one("#user-status").text == "enabled"
        assert page.forms["role-form"]["role"].value == "staff"
        for form in ("role-form", "password-form", "enabled-form", "sessions-form"):
            assert page.forms[form]["csrf_token"].value

    def test_unknown_user_is_404(self, admin):
        page = admin.get("/admin/users/nobody", headers=HTML, status=404)
        assert "no user 'nobody'" in page.html.text

    def test_unknown_change_is_400(self, admin, db):
        before = last_event_id(db)
        form = admin.get("/admin/users/boss", headers=HTML).forms["sessions-form"]
        form["change"].force_value("delete")
        assert "unknown change" in form.submit(status=400)
        assert events_since(db, before) == []


class TestChangeRole:
    def test_changes_the_role_and_ends_their_sessions(self, admin, nurse, db):
        nurse.get("/badges", status=200)
        before = last_event_id(db)
        form = admin.get("/admin/users/nurse", headers=HTML).forms["role-form"]
        response = submit(form, role="admin")
        assert response.location.endswith("/admin/users/nurse")
        page = response.follow(headers=HTML)
        assert "nurse is now admin" in page.html.select_one(".flashes").text
        assert page.html.select_one("#user-role").text == "admin"
        assert get_user(db, "nurse").role == Role.ADMIN
        assert events_since(db, before) == [
            ("boss", "user", "user.role", "nurse", {"from": "staff", "to": "admin"})
        ]
        # Logged out: the new role takes effect at the next login.
        nurse.get("/badges", status=401)

    def test_the_same_role_changes_nothing(self, admin, nurse, db):
        before = last_event_id(db)
        form = admin.get("/admin/users/nurse", headers=HTML).forms["role-form"]
        page = submit(form, role="staff").follow(headers=HTML)
        assert "Nothing to change." in page.text
        assert events_since(db, before) == []
        nurse.get("/badges", status=200)

    def test_the_last_admin_keeps_their_role(self, admin, db):
        before = last_event_id(db)
        form = admin.get("/admin/users/boss", headers=HTML).forms["role-form"]
        page = submit(form, status=400, role="viewer")
        error = page.html.select_one("#role-form #role-error")
        assert "the last enabled admin cannot be removed" in error.text
        assert get_user(db, "boss").role == Role.ADMIN
        assert events_since(db, before) == []
        admin.get("/admin/users", headers=HTML, status=200)

    def test_an_admin_may_step_down_while_another_remains(self, admin, create_user, db):
        create_user("deputy", "admin")
        form = admin.get("/admin/users/boss", headers=HTML).forms["role-form"]
        response = submit(form, role="staff")
        assert get_user(db, "boss").role == Role.STAFF
        # Their own session ended with the change: back to the login page.
        assert response.follow(headers=HTML, status=303).location.startswith(
            "http://localhost/login?next="
        )


class TestPassword:
    def test_sets_the_password_and_ends_their_sessions(
        self, admin, nurse, make_app, db
    ):
        other_browser = make_app()
        login(other_browser, "nurse", PASSWORD)
        assert sessions_of(db, "nurse") == 2
        before = last_event_id(db)
        form = admin.get("/admin/users/nurse", headers=HTML).forms["password-form"]
        page = submit(form, password=NEW_PASSWORD, confirm=NEW_PASSWORD).follow(
            headers=HTML
        )
        assert "Set a new password for nurse" in page.text
        assert events_since(db, before) == [
            ("boss", "user", "user.password", "nurse", None)
        ]
        assert sessions_of(db, "nurse") == 0
        nurse.get("/badges", status=401)
        other_browser.get("/badges", status=401)
        login(make_app(), "nurse", PASSWORD, status=401)
        login(make_app(), "nurse", NEW_PASSWORD)

    @pytest.mark.parametrize(
        ("password", "confirm", "field", "message"),
        [
            ("short", "short", "password", "at least 10 characters"),
            (NEW_PASSWORD, "something else", "confirm", "the two passwords differ"),
        ],
    )
    def test_refusal_is_shown_next_to_the_field(
        self, admin, nurse, make_app, db, password, confirm, field, message
    ):
        before = last_event_id(db)
        form = admin.get("/admin/users/nurse", headers=HTML).forms["password-form"]
        page = submit(form, status=400, password=password, confirm=confirm)
        assert message in page.html.select_one(f"#password-form #{field}-error").text
        assert events_since(db, before) == []
        nurse.get("/badges", status=200)
        login(make_app(), "nurse", PASSWORD)

    def test_no_password_reaches_the_audit_log_or_the_page(self, admin, db):
        form = admin.get("/admin/users/boss", headers=HTML).forms["password-form"]
        submit(form, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
        db.rollback()
        for event in db.scalars(select(AuditEvent)):
            assert NEW_PASSWORD not in repr(event.as_json())


class TestDisable:
    def test_disable_and_enable(self, admin, nurse, make_app, db):
        before = last_event_id(db)
        form = admin.get("/admin/users/nurse", headers=HTML).forms["enabled-form"]
        page = form.submit(status=303).follow(headers=HTML)
        assert "Disabled nurse" in page.text
        assert page.html.select_one("#user-status").text == "disabled"
        assert get_user(db, "nurse").disabled
        nurse.get("/badges", status=401)
        login(make_app(), "nurse", PASSWORD, status=401)
        row = admin.get("/admin/users", headers=HTML).html.select_one(
            "#users tr[data-username=nurse]"
        )
        assert "disabled" in row["class"]

        page = page.forms["enabled-form"].submit(status=303).follow(headers=HTML)
        assert "Enabled nurse." in page.text
        assert not get_user(db, "nurse").disabled
        login(make_app(), "nurse", PASSWORD)
        assert events_since(db, before) == [
            ("boss", "user", "user.disable", "nurse", None),
            # The failed login of the disabled account.
            ("nurse", "anonymous", "login.failure", "nurse", None),
            ("boss", "user", "user.enable", "nurse", None),
            ("nurse", "user", "login.success", "nurse", None),
        ]

    def test_a_stale_form_changes_nothing(self, admin, create_user, db):
        create_user("nurse", "staff")
        stale = admin.get("/admin/users/nurse", headers=HTML).forms["enabled-form"]
        stale.submit(status=303)
        before = last_event_id(db)
        # Submitted again from an old tab: "disable" an account already disabled.
        assert "Nothing to change." in stale.submit(status=303).follow(headers=HTML)
        assert events_since(db, before) == []

    def test_the_last_admin_cannot_be_disabled(self, admin, db):
        before = last_event_id(db)
        form = admin.get("/admin/users/boss", headers=HTML).forms["enabled-form"]
        page = form.submit(status=400)
        error = page.html.select_one("#enabled-form #enabled-error")
        assert "the last enabled admin cannot be removed" in error.text
        assert not get_user(db, "boss").disabled
        assert events_since(db, before) == []
        admin.get("/admin/users", headers=HTML, status=200)


class TestEndSessions:
    def test_logs_them_out_everywhere(self, admin, nurse, make_app, db):
        other_browser = make_app()
        login(other_browser, "nurse", PASSWORD)
        before = last_event_id(db)
        form = admin.get("/admin/users/nurse", headers=HTML).forms["sessions-form"]
        page = form.submit(status=303).follow(headers=HTML)
        assert "Ended every session of nurse." in page.text
        assert events_since(db, before) == [
            ("boss", "user", "user.sessions_end", "nurse", None)
        ]
        nurse.get("/badges", status=401)
        other_browser.get("/badges", status=401)
        # Only their sessions: the admin's own goes on.
        admin.get("/admin/users", headers=HTML, status=200)
        login(make_app(), "nurse", PASSWORD)


class TestCsrfOnChanges:
    @pytest.mark.parametrize(
        "values",
        [
            {"change": "role", "role": "viewer"},
            {"change": "password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            {"change": "enabled", "enabled": "false"},
            {"change": "sessions"},
        ],
    )
    def test_without_the_token_nothing_changes(
        self, admin, nurse, make_app, db, values
    ):
        before = last_event_id(db)
        response = admin.post("/admin/users/nurse", values, headers=HTML, status=403)
        assert "CSRF" in response.text
        user = get_user(db, "nurse")
        assert user.role == Role.STAFF and not user.disabled
        assert events_since(db, before) == []
        nurse.get("/badges", status=200)
        login(make_app(), "nurse", PASSWORD)
