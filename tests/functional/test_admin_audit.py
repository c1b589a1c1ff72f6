"""/admin/audit: browsing the audit log, newest first, filtered and paged."""

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stethoscope.admin.views import AUDIT_PAGE_ROWS
from stethoscope.audit.models import AuditEvent
from stethoscope.audit.services import AuditService
from tests.conftest import login

HTML = {"Accept": "text/html"}


def event_count(db) -> int:
    db.rollback()  # see what the app committed since
    return db.scalar(select(func.count()).select_from(AuditEvent))


@pytest.fixture
def add_events(engine):
    """Append events straight to the log: ``add_events(n, action=..., ...)``."""

    def add(n=1, action="test.event", actor="console", **values):
        with Session(engine) as session, session.begin():
            service = AuditService(session)
            return [
                service.record(action, actor=actor, actor_type="console", **values).id
                for _ in range(n)
            ]

    return add


def shown(page) -> list[dict]:
    """The table's rows as dicts of column name to text."""
    columns = [th.text for th in page.html.select("#audit thead th")]
    return [
        dict(zip(columns, (td.text for td in tr.find_all("td")), strict=True))
        for tr in page.html.select("#audit tbody tr:not(.empty)")
    ]


class TestAccess:
    def test_admin_gets_the_page(self, admin):
        page = admin.get("/admin/audit", headers=HTML, status=200)
        assert page.headers["Cache-Control"] == "no-store"

    @pytest.mark.parametrize("role", ["viewer", "staff"])
    def test_other_roles_get_403(self, make_app, create_user, role):
        app = make_app()
        login(app, *create_user("someone", role))
        app.get("/admin/audit", headers=HTML, status=403)
        assert app.get("/admin/audit", status=403).json["error"] == "forbidden"

    def test_anonymous_browser_is_sent_to_log_in(self, anonymous):
        response = anonymous.get("/admin/audit?actor=boss", headers=HTML, status=303)
        assert "/login?next=%2Fadmin%2Faudit%3Factor%3Dboss" in response.location

    def test_anonymous_api_client_gets_401(self, anonymous):
        anonymous.get("/admin/audit", status=401)


class TestBrowsing:
    def test_shows_events_newest_first(self, admin, add_events, db):
        add_events(
            action="user.create",
            actor="boss",
            target="<b>nurse</b>",
            ip="192.0.2.99",
            details={"role": "staff", "note": "<script>x</script>"},
        )
        page = admin.get("/admin/audit", headers=HTML)
        rows = shown(page)
        assert [row["Action"] for row in rows] == ["user.create", "login.success"]
        newest = rows[0]
        assert newest["Actor"] == "boss"
        assert newest["Actor type"] == "console"
        assert newest["Target"] == "<b>nurse</b>"
        assert newest["IP"] == "192.0.2.99"
        assert json.loads(newest["Details"]) == {
            "role": "staff",
            "note": "<script>x</script>",
        }
        assert newest["Details"] == '{"note":"<script>x</script>","role":"staff"}'
        assert newest["Time (UTC)"].endswith(" UTC")
        # Shown as text, never as markup.
        assert page.html.select("#audit b, #audit script") == []
        login_row = rows[1]
        assert (login_row["Actor type"], login_row["IP"]) == ("user", "192.0.2.10")
        assert login_row["Details"] == ""

    def test_viewing_is_not_itself_recorded(self, admin, db):
        before = event_count(db)
        admin.get("/admin/audit", headers=HTML)
        admin.get("/admin/audit?action=login&actor=boss", headers=HTML)
        assert event_count(db) == before

    def test_filters_by_action_prefix_and_actor(self, admin, add_events):
        add_events(action="user.create", actor="boss")
        add_events(action="user.role", actor="deputy")
        add_events(action="token.create", actor="boss")
        add_events(action="users_x", actor="boss")  # "_" is no wildcard

        def actions(query):
            page = admin.get(f"/admin/audit?{query}", headers=HTML)
            return [(row["Action"], row["Actor"]) for row in shown(page)]

        assert actions("action=user.") == [
            ("user.role", "deputy"),
            ("user.create", "boss"),
        ]
        assert actions("action=user.&actor=boss") == [("user.create", "boss")]
        assert actions("actor=deputy") == [("user.role", "deputy")]
        assert actions("action=user_") == []
        assert actions("action=login") == [("login.success", "boss")]
        page = admin.get("/admin/audit?action=nothing", headers=HTML)
        assert "No events match." in page.text
        # The form keeps the filter, and offers the actions seen so far.
        page = admin.get("/admin/audit?action=user.&actor=boss", headers=HTML)
        form = page.forms["audit-filter"]
        assert (form["action"].value, form["actor"].value) == ("user.", "boss")
        known = [o["value"] for o in page.html.select("#known-actions option")]
        assert known == [
            "login.success",
            "token.create",
            "user.create",
            "user.role",
            "users_x",
        ]

    def test_pages_back_through_older_events(self, admin, add_events):
        ids = add_events(2 * AUDIT_PAGE_ROWS + 5, action="bulk.event")
        add_events(3, action="other.event")
        seen = []
        page = admin.get("/admin/audit?action=bulk", headers=HTML)
        while True:
            rows = page.html.select("#audit tbody tr")
            assert len(rows) <= AUDIT_PAGE_ROWS
            seen.extend(int(tr["data-id"]) for tr in rows)
            older = page.html.select_one("#older")
            if older is None:
                break
            assert "action=bulk" in older["href"]
            page = admin.get(older["href"], headers=HTML)
        assert seen == sorted(ids, reverse=True)

    def test_a_full_last_page_has_no_older_link(self, admin, db, add_events):
        add_events(AUDIT_PAGE_ROWS - event_count(db))
        page = admin.get("/admin/audit", headers=HTML)
        assert len(page.html.select("#audit tbody tr")) == AUDIT_PAGE_ROWS
        assert page.html.select_one("#older") is None

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("before=abc", "before: must be an event id"),
            ("before=-1", "before: must be an event id"),
            ("before=" + "9" * 30, "before: must be an event id"),
            (f"before={2**63}", "before: must be an event id"),
            ("before=%EF%BC%91", "before: must be an event id"),  # a wide "1"
            ("action=%3Cscript%3E", "action: up to 64 lower-case letters"),
            ("action=" + "a" * 65, "action: up to 64 lower-case letters"),
            ("actor=two%20words", "actor: up to 64 printable characters"),
        ],
    )
    def test_bad_parameters_are_400(self, admin, query, message):
        page = admin.get(f"/admin/audit?{query}", headers=HTML, status=400)
        assert message in page.html.text
        response = admin.get(f"/admin/audit?{query}", status=400)
        assert message in response.json["message"]
