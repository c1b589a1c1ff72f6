"""/admin (the landing page), a refused audit filter keeping its form, and
names with text direction overrides refused wherever they are entered."""

import pytest

from tests.conftest import login
from tests.functional.test_registry_api import Api

HTML = {"Accept": "text/html"}
AREAS = {
    "users": "/admin/users",
    "tokens": "/admin/gateway_tokens",
    "house": "/admin/house",
    "training": "/admin/training",
    "models": "/admin/models",
    "audit": "/admin/audit",
}
# Right-to-left override, left-to-right embedding, first-strong isolate.
OVERRIDES = ["\u202e", "\u202a", "\u2068", "\u2069"]


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


class TestLanding:
    def test_links_every_area_with_its_counts(self, admin):
        api = Api(admin)
        api.post("/sites", {"id": "oak", "name": "Oak", "timezone": "UTC"})
        api.post("/rooms", {"id": "hall", "name": "Hall", "site": "oak"})
        page = admin.get("/admin", headers=HTML, status=200)
        for area, path in AREAS.items():
            item = page.html.select_one(f'[data-count="{area}"]').parent
            assert item.select_one("a")["href"].endswith(path)
        counts = {
            area: page.html.select_one(f'[data-count="{area}"]').text for area in AREAS
        }
        assert counts["users"].startswith("1 user.")
        assert counts["house"].startswith("1 site, 1 room, 0 beacons.")
        assert counts["training"].startswith("0 runs, 0 open.")
        assert counts["models"].startswith("0 versions")
        assert "room.create" in counts["audit"]
        nav = page.html.select_one('nav[aria-label="Admin"]')
        assert nav.select_one('[aria-current="page"]').text == "Overview"

    @pytest.mark.parametrize("role", ["viewer", "staff"])
    def test_others_get_403(self, make_app, create_user, role):
        app = make_app()
        login(app, *create_user("someone", role))
        app.get("/admin", headers=HTML, status=403)

    def test_anonymous_is_sent_to_log_in(self, anonymous):
        response = anonymous.get("/admin", headers=HTML, status=303)
        assert "/login?next=%2Fadmin" in response.location


class TestAuditFilter:
    def test_a_refused_filter_keeps_the_form(self, admin):
        page = admin.get(
            "/admin/audit",
            {"action": "<script>", "actor": "boss"},
            headers=HTML,
            status=400,
        )
        assert page.content_type == "text/html"
        form = page.forms["audit-filter"]
        assert form["action"].value == "<script>"
        assert form["actor"].value == "boss"
        assert page.html.select_one("#action")["aria-invalid"] == "true"
        assert page.html.select_one("#actor").get("aria-invalid") is None
        assert "action: up to 64" in page.html.select_one("#filter-errors").text
        assert page.html.select_one("#action-error") is not None
        assert page.html.select("#audit tbody tr.empty")

    def test_a_script_still_gets_json(self, admin):
        response = admin.get("/admin/audit?before=x", status=400)
        assert response.json["message"].startswith("before: must be an event id")


class TestDirectionOverrides:
    @pytest.mark.parametrize("override", OVERRIDES)
    def test_the_api_refuses_them_in_names(self, admin, override):
        api = Api(admin)
        api.post("/sites", {"id": "oak", "name": "Oak", "timezone": "UTC"})
        response = api.post(
            "/rooms", {"id": "hall", "name": f"Hall{override}A", "site": "oak"}, 400
        )
        assert response.json["errors"] == [
            {"field": "name", "message": "must not contain text direction overrides"}
        ]
        response = api.put("/registry/badges/B1", {"wearer": f"Mrs{override} B"}, 400)
        assert response.json["errors"][0]["field"] == "wearer"

    def test_the_house_form_refuses_them_next_to_the_field(self, admin):
        Api(admin).post("/sites", {"id": "oak", "name": "Oak", "timezone": "UTC"})
        form = admin.get("/admin/house", headers=HTML).forms["add-room"]
        form["id"] = "hall"
        form["name"] = "Hall\u202e1"
        page = form.submit(headers=HTML, status=400)
        error = page.html.select_one("#room-name-error")
        assert error.text == "must not contain text direction overrides"
        # The action carries the form's fragment: the browser shows it.
        assert page.html.select_one("#add-room")["action"].endswith("#add-room")
