"""The staff pages: /readings, /gateways, /beacons, /badges, /alerts, the
main navigation (in a real browser: tests/browser/test_pages.py)."""

import datetime
import re

import pytest
from sqlalchemy.orm import Session

from stethoscope.alerts.conditions import ADVICE
from stethoscope.alerts.models import Alert
from stethoscope.registry.models import Badge, Beacon, Gateway, Room, Site
from tests.conftest import login

HTML = {"Accept": "text/html"}
STAFF_PAGES = ["/readings", "/gateways", "/beacons", "/badges", "/alerts"]
NOW = datetime.datetime.now(datetime.UTC)


def post(app, badge_id="b-1", pi_id="gw-1", beacons=None, **extra):
    payload = {"badge_id": badge_id, "pi_id": pi_id, "beacons": beacons or {"a": -40}}
    return app.post_json("/rssi_readings", {**payload, **extra}, status=201).json


@pytest.fixture
def house(engine):
    with Session(engine) as session, session.begin():
        session.add(Site(id="rose", name="Rose", timezone="Asia/Tokyo"))
        session.flush()
        session.add(Room(id="lounge", site_id="rose", name="Lounge"))
        session.flush()
        session.add(Beacon(id="a", room_id="lounge", label="by the door"))
        session.add(Badge(id="b-1", site_id="rose", wearer="Mrs B."))
        session.add(Gateway(id="gw-1", site_id="rose", name="Hall"))


def app_as(make_app, create_user, role):
    app = make_app()
    login(app, *create_user(f"a-{role}", role))
    return app


def rows(page, table_id):
    return page.html.select(f"#{table_id} tbody tr:not(.empty)")


class TestAccess:
    @pytest.mark.parametrize("role", ["viewer", "staff", "admin"])
    def test_every_role_gets_every_page(self, make_app, create_user, role):
        app = app_as(make_app, create_user, role)
        for path in STAFF_PAGES:
            page = app.get(path, headers=HTML, status=200)
            assert page.content_type == "text/html"

    def test_anonymous_is_sent_to_log_in(self, anonymous):
        for path in STAFF_PAGES:
            response = anonymous.get(path, headers=HTML, status=303)
            assert "/login?next=" in response.location

    @pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
    def test_json_clients_still_get_json(self, testapp, accept):
        headers = {"Accept": accept} if accept else {}
        for path, key in [("/gateways", "gateways"), ("/badges", "badges")]:
            response = testapp.get(path, headers=headers, status=200)
            assert response.content_type == "application/json"
            assert key in response.json
        response = testapp.get("/alerts", headers=headers, status=200)
        assert "alerts" in response.json

    def test_a_browser_gets_pages(self, testapp):
        browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        for path in STAFF_PAGES:
            assert testapp.get(path, headers=browser).content_type == "text/html"


class TestNavigation:
    def nav(self, page):
        return page.html.select_one('nav[aria-label="Main"]')

    def test_the_current_page_is_marked(self, testapp):
        for path in STAFF_PAGES:
            nav = self.nav(testapp.get(path, headers=HTML))
            (current,) = nav.select('[aria-current="page"]')
            assert current["href"].endswith(path)

    def test_a_viewer_sees_no_admin_link(self, testapp):
        links = [
            a["href"]
            for a in self.nav(testapp.get("/readings", headers=HTML)).select("a")
        ]
        assert not any(href.endswith("/admin") for href in links)
        assert any(href.endswith("/alerts") for href in links)

    def test_an_admin_sees_the_admin_landing_link(self, admin):
        nav = self.nav(admin.get("/readings", headers=HTML))
        assert nav.select_one('a[href$="/admin"]').text == "Admin"

    def test_anonymous_sees_only_public_links(self, anonymous):
        nav = self.nav(anonymous.get("/login", headers=HTML))
        hrefs = [a["href"] for a in nav.select("a")]
        assert not any(h.endswith(p) for h in hrefs for p in STAFF_PAGES)
        assert [a.text for a in nav.select("a")] == ["Stethoscope", "API"]


class TestReadings:
    def test_newest_observed_first_on_the_sites_clock(self, testapp, house):
        old = post(
            testapp, "b-1", observed_at=(NOW - datetime.timedelta(hours=3)).isoformat()
        )
        new = post(testapp, "b-1", beacons={"a": -41})
        page = testapp.get("/readings", headers=HTML)
        found = rows(page, "readings")
        assert [row["data-id"] for row in found] == [str(new["id"]), str(old["id"])]
        # Asia/Tokyo's clock, 24-hour, with its abbreviation.
        observed = datetime.datetime.fromisoformat(new["observed_at"])
        expected = observed.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
        assert expected.strftime("%Y-%m-%d %H:%M:%S JST") in found[0].text
        assert re.search(r"(just now|\d+ s ago)", found[0].select_one(".age").text)
        assert found[1].select_one(".age").text == "3 h ago"

    def test_imported_readings_are_marked_not_live(self, testapp, house):
        post(
            testapp, "b-1", observed_at=(NOW - datetime.timedelta(hours=2)).isoformat()
        )
        post(testapp, "b-1", beacons={"a": -50})
        found = rows(testapp.get("/readings", headers=HTML), "readings")
        assert "imported" not in found[0].get("class", [])
        assert "Imported" not in found[0].text
        assert "imported" in found[1]["class"]
        assert "Imported" in found[1].text

    def test_filters_by_badge_gateway_and_time(self, testapp, house):
        a = post(testapp, "b-1", "gw-1")
        b = post(testapp, "b-2", "gw-2")
        old = post(
            testapp,
            "b-1",
            "gw-1",
            beacons={"z": -60},
            observed_at=(NOW - datetime.timedelta(hours=5)).isoformat(),
        )

        def ids(query):
            page = testapp.get("/readings", query, headers=HTML, status=200)
            return [int(row["data-id"]) for row in rows(page, "readings")]

        assert ids({"badge": "b-2"}) == [b["id"]]
        assert ids({"gateway": "gw-1"}) == [a["id"], old["id"]]
        since = (NOW - datetime.timedelta(hours=1)).isoformat()
        assert set(ids({"since": since})) == {a["id"], b["id"]}
        until = (NOW - datetime.timedelta(hours=1)).isoformat()
        assert ids({"until": until, "badge": "", "gateway": ""}) == [old["id"]]
        # Without an offset: the site's clock (Asia/Tokyo, UTC+9).
        tokyo = NOW + datetime.timedelta(hours=9) - datetime.timedelta(hours=1)
        assert set(ids({"since": tokyo.strftime("%Y-%m-%d %H:%M")})) == {
            a["id"],
            b["id"],
        }

    def test_the_form_keeps_its_values(self, testapp, house):
        page = testapp.get(
            "/readings", {"badge": "b-9", "since": "2024-05-01 13:30"}, headers=HTML
        )
        form = page.forms["readings-filter"]
        assert form["badge"].value == "b-9"
        assert form["since"].value == "2024-05-01 13:30"

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"since": "yesterday"}, "since"),
            ({"until": "1700000000"}, "until"),
            ({"badge": "two words"}, "badge"),
            ({"since": "2024-05-02T00:00Z", "until": "2024-05-01T00:00Z"}, "until"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_a_refused_filter_keeps_the_form(self, testapp, house, query, field):
        post(testapp)
        page = testapp.get("/readings", query, headers=HTML, status=400)
        errors = page.html.select_one("#filter-errors")
        assert errors is not None and f"{field}:" in errors.text
        assert errors["role"] == "alert"
        form = page.forms["readings-filter"]
        for key, value in query.items():
            if key in form.fields:
                assert form[key].value == value
                assert form.html.select_one(f"#{key}").get("aria-invalid") == (
                    "true" if key == field else None
                )
        assert rows(page, "readings") == []


class TestDevices:
    def test_gateways_show_rate_duplicates_and_address(self, testapp, house):
        post(testapp, "b-1", "gw-1")
        testapp.post_json(
            "/rssi_readings",
            {"badge_id": "b-1", "pi_id": "gw-1", "beacons": {"a": -40}},
            status=409,
        )
        page = testapp.get("/gateways", headers=HTML)
        (row,) = rows(page, "gateways")
        assert row["data-gateway-id"] == "gw-1"
        cells = [cell.text.strip() for cell in row.select("th, td")]
        assert cells[1] == "Hall"
        assert cells[2] == "Online"
        assert "JST" in cells[3]
        assert cells[4] == "2.0"  # two posts in its first minute
        assert cells[5] == "50 %"
        assert cells[6] == "192.0.2.10"

    def test_beacons_show_room_badges_and_trend(self, testapp, house):
        post(testapp, "b-1", beacons={"a": -40, "stray": -80})
        post(testapp, "b-2", beacons={"a": -60})
        page = testapp.get("/beacons", headers=HTML)
        by_id = {row["data-beacon-id"]: row for row in rows(page, "beacons")}
        assert set(by_id) == {"a", "stray"}
        assert "Lounge" in by_id["a"].text
        assert by_id["a"].select_one('[data-field="badges"]').text == "2"
        assert "Not in the house" in by_id["stray"].text

    def test_wearers_only_for_those_who_may_view_history(
        self, make_app, create_user, house
    ):
        viewer = app_as(make_app, create_user, "viewer")
        post(viewer, "b-1")
        page = viewer.get("/badges", headers=HTML)
        assert "Mrs B." not in page.text
        assert page.html.select_one('[data-field="wearer"]') is None
        staff = app_as(make_app, create_user, "staff")
        page = staff.get("/badges", headers=HTML)
        (row,) = [r for r in rows(page, "badges") if r["data-badge-id"] == "b-1"]
        assert row.select_one('[data-field="wearer"]').text.strip() == "Mrs B."
        # No active model at rose: said once, above the table.
        assert "no active model" in page.html.select_one(".notice").text

    def test_names_never_carry_direction_overrides(self, engine, testapp, house):
        # Stored before names were checked for them: shown without them.
        with Session(engine) as session, session.begin():
            session.get(Room, "lounge").name = "Lou\u202enge"
        page = testapp.get("/beacons", headers=HTML)
        assert "\u202e" not in page.text
        assert "Lounge" in page.html.select_one("#beacons tbody").text


class TestAlerts:
    def test_open_and_recently_cleared_alerts_with_their_advice(
        self, engine, testapp, house
    ):
        hour = datetime.timedelta(hours=1)
        with Session(engine) as session, session.begin():
            # Still true when the page evaluates the site: stays open.
            gateway = session.get(Gateway, "gw-1")
            gateway.first_seen = gateway.last_seen = NOW - hour
            for kind, cleared in [("gateway_silent", None), ("beacon_silent", NOW)]:
                session.add(
                    Alert(
                        site_id="rose",
                        kind=kind,
                        subject="gw-1" if kind == "gateway_silent" else "a",
                        opened_at=NOW - hour,
                        cleared_at=cleared,
                        last_checked_at=NOW,
                        details={"message": f"{kind} for a test"},
                    )
                )
        page = testapp.get("/alerts", headers=HTML, status=200)
        opened = rows(page, "open-alerts")
        assert [row["data-kind"] for row in opened] == ["gateway_silent"]
        assert ADVICE["gateway_silent"] in opened[0].text
        assert "JST" in opened[0].text
        (cleared,) = rows(page, "cleared-alerts")
        assert cleared["data-kind"] == "beacon_silent"
        assert ADVICE["beacon_silent"] in cleared.text


class TestReadingsApi:
    """GET /rssi_readings' since and until (the JSON the pages poll)."""

    def test_since_and_until_filter_by_observed_time(self, testapp):
        old = post(
            testapp, "b-1", observed_at=(NOW - datetime.timedelta(hours=3)).isoformat()
        )
        new = post(testapp, "b-1", beacons={"a": -41})
        hour_ago = (NOW - datetime.timedelta(hours=1)).isoformat()

        def ids(**query):
            body = testapp.get("/rssi_readings", query, status=200).json
            return [reading["id"] for reading in body["readings"]]

        assert ids(since=hour_ago) == [new["id"]]
        assert ids(until=hour_ago) == [old["id"]]
        # Without an offset: UTC.
        naive = (NOW - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        assert ids(since=naive) == [new["id"]]
        assert ids(since=hour_ago, after=0) == [new["id"]]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"since": "yesterday"}, "since"),
            ({"until": "1700000000"}, "until"),
            ({"since": "2024-05-02T00:00Z", "until": "2024-05-01T00:00Z"}, "until"),
            ({"sinse": "2024-05-01T00:00Z"}, "sinse"),
        ],
    )
    def test_refused_parameters_are_400_naming_them(self, testapp, query, field):
        response = testapp.get("/rssi_readings", query, status=400)
        assert [error["field"] for error in response.json["errors"]] == [field]
