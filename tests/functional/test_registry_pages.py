"""/admin/house: the admin pages of sites, rooms, beacons, gateways, badges."""

import datetime

import pytest
import webtest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.labels.models import TrainingRun
from stethoscope.registry.models import Beacon
from stethoscope.singletons import ACTIVITY
from tests.conftest import login
from tests.functional.test_registry_api import Api

HTML = {"Accept": "text/html"}
PAGES = [
    "/admin/house",
    "/admin/house/beacons",
    "/admin/house/devices",
    "/admin/house/unplaced",
    "/admin/house/sites/oak",
    "/admin/house/rooms/hall",
    "/admin/house/beacons/b1",
    "/admin/house/gateways/pi-1",
    "/admin/house/badges/B1",
]


@pytest.fixture
def house(admin):
    api = Api(admin)
    api.post("/sites", {"id": "oak", "name": "Oak", "timezone": "Asia/Tokyo"})
    api.post("/rooms", {"id": "hall", "name": "Hall", "site": "oak"})
    api.post("/beacons", {"id": "b1", "room": "hall"})
    return admin


def form(app, url, form_id):
    return app.get(url, headers=HTML).forms[form_id]


class TestAccess:
    def test_admin_gets_every_page(self, house):
        for url in PAGES:
            house.get(url, headers=HTML, status=200)

    @pytest.mark.parametrize("role", ["viewer", "staff"])
    def test_other_roles_get_403(self, house, make_app, create_user, role):
        app = make_app()
        login(app, *create_user("someone", role))
        for url in PAGES:
            app.get(url, headers=HTML, status=403)
        token = app.get("/login", headers=HTML).forms["login"]["csrf_token"].value
        for url in ("/admin/house/sites", "/admin/house/rooms/hall"):
            app.post(url, {"csrf_token": token, "id": "x"}, status=403)

    def test_anonymous_is_sent_to_log_in(self, anonymous):
        response = anonymous.get("/admin/house", headers=HTML, status=303)
        assert "/login?next=%2Fadmin%2Fhouse" in response.location
        anonymous.get("/admin/house", status=401)


class TestSitesAndRooms:
    def test_add_a_site_and_a_room_with_adjacency(self, house, db):
        add = form(house, "/admin/house", "add-site")
        add["id"], add["name"], add["timezone"] = "elm", "Elm", "Europe/London"
        page = add.submit(status=303).follow(headers=HTML)
        assert "Added site elm." in page.text

        add = page.forms["add-room"]
        add["id"] = "0b7e3a52-6f1c-4e43-9a57-2d7c1f0f4b11"
        add["name"], add["site"], add["floor"] = "Kitchen", "oak", "1"
        add["adjacent"] = ["hall"]
        page = add.submit(status=303).follow(headers=HTML)
        row = page.html.select_one('tr[data-room="hall"]')
        assert "0b7e3a52-6f1c-4e43-9a57-2d7c1f0f4b11" in row.text

    def test_a_refused_site_is_shown_next_to_the_field(self, house, db):
        add = form(house, "/admin/house", "add-site")
        add["id"], add["name"], add["timezone"] = "elm", "Elm", "Nowhere/Town"
        page = add.submit(status=400)
        error = page.html.select_one("#site-timezone-error").text
        assert "IANA" in error
        assert page.html.select_one("#site-timezone")["aria-invalid"] == "true"
        assert page.forms["add-site"]["id"].value == "elm"

    def test_adjacency_across_sites_is_refused(self, house):
        Api(house).post("/sites", {"id": "elm", "name": "Elm", "timezone": "UTC"})
        add = form(house, "/admin/house", "add-room")
        add["id"], add["name"], add["site"] = "porch", "Porch", "elm"
        add["adjacent"] = ["hall"]
        page = add.submit(status=400)
        assert "site 'oak'" in page.html.select_one("#room-adjacent-error").text

    def test_edit_and_delete_a_room(self, house):
        edit = form(house, "/admin/house/rooms/hall", "edit-room")
        edit["name"], edit["floor"] = "Main hall", "x"
        page = edit.submit(status=400)
        assert page.html.select_one("#floor-error")
        edit = page.forms["edit-room"]
        edit["floor"] = "2"
        page = edit.submit(status=303).follow(headers=HTML)
        assert "Saved room hall." in page.text
        page = page.forms["delete-room"].submit(status=303).follow(headers=HTML)
        assert "Deleted room hall." in page.text
        assert Api(house).get("/beacons/b1").json["room"] is None

    def test_max_stay_when_a_room_is_added_and_on_its_page(self, house, db):
        add = form(house, "/admin/house", "add-room")
        add["id"], add["name"], add["site"] = "bath", "Bathroom", "oak"
        add["max_stay_minutes"] = "0"
        page = add.submit(status=400)
        error = page.html.select_one("#room-max-stay-error").text
        assert "greater than or equal to 1" in error
        assert page.html.select_one("#room-max-stay")["aria-invalid"] == "true"
        add = page.forms["add-room"]
        assert (add["id"].value, add["max_stay_minutes"].value) == ("bath", "0")
        add["max_stay_minutes"] = "30"
        add.submit(status=303)
        assert Api(house).get("/rooms/bath").json["max_stay_minutes"] == 30

        edit = form(house, "/admin/house/rooms/bath", "edit-room")
        assert edit["max_stay_minutes"].value == "30"
        edit["max_stay_minutes"] = "a while"
        page = edit.submit(status=400)
        assert "whole number" in page.html.select_one("#max-stay-error").text
        edit = page.forms["edit-room"]
        edit["max_stay_minutes"] = ""
        edit.submit(status=303)
        assert Api(house).get("/rooms/bath").json["max_stay_minutes"] is None

    def test_max_stay_beside_each_room(self, house, db):
        Api(house).post("/rooms", {"id": "bath", "name": "Bath", "site": "oak"})
        page = house.get("/admin/house", headers=HTML)
        form_id = page.html.select_one('tr[data-room="bath"] form')["id"]
        beside = page.forms[form_id]
        assert beside.action.endswith("/admin/house/rooms/bath#rooms")
        beside["max_stay_minutes"] = "45"
        page = beside.submit(status=303).follow(headers=HTML)
        assert "Room bath: max stay 45 minutes." in page.text
        row = page.html.select_one('tr[data-room="bath"]')
        assert row.select_one("input[name=max_stay_minutes]")["value"] == "45"
        assert Api(house).get("/rooms/bath").json["max_stay_minutes"] == 45
        # Only the limit changes; the hall's own row is untouched.
        assert Api(house).get("/rooms/bath").json["name"] == "Bath"

        beside = page.forms[form_id]
        beside["max_stay_minutes"] = "2000"
        page = beside.submit(status=400)
        row = page.html.select_one('tr[data-room="bath"]')
        field = row.select_one("input[name=max_stay_minutes]")
        assert field["value"] == "2000" and field["aria-invalid"] == "true"
        error = page.html.select_one(f"#{field['aria-describedby']}")
        assert "less than or equal to 1440" in error.text
        assert error.find_parent("tr")["data-room"] == "bath"
        hall = page.html.select_one('tr[data-room="hall"] input[name=max_stay_minutes]')
        assert "aria-invalid" not in hall.attrs
        assert Api(house).get("/rooms/bath").json["max_stay_minutes"] == 45

        beside = page.forms[form_id]
        beside["max_stay_minutes"] = ""
        page = beside.submit(status=303).follow(headers=HTML)
        assert "Room bath: no max stay." in page.text
        assert Api(house).get("/rooms/bath").json["max_stay_minutes"] is None
        db.rollback()
        actions = db.scalars(
            select(AuditEvent.action).where(AuditEvent.target == "bath")
        ).all()
        assert actions == ["room.create", "room.update", "room.update"]

    def test_a_room_with_training_runs_is_not_deleted(self, house, engine):
        with Session(engine) as session, session.begin():
            session.add(
                TrainingRun(
                    badge_id="B1",
                    room_id="hall",
                    started_at=datetime.datetime.now(datetime.UTC),
                    created_by="boss",
                )
            )
        page = form(house, "/admin/house/rooms/hall", "delete-room").submit(status=409)
        assert "training run" in page.html.select_one("#form-error").text

    def test_site_edit_and_delete_refused(self, house):
        edit = form(house, "/admin/house/sites/oak", "edit-site")
        edit["timezone"] = "Europe/Paris"
        edit.submit(status=303)
        page = form(house, "/admin/house/sites/oak", "delete-site").submit(status=409)
        assert "1 rooms" in page.html.select_one("#form-error").text


class TestImport:
    def test_upload_csv_and_see_errors_by_line(self, house, db):
        upload = form(house, "/admin/house", "import")
        upload["kind"] = "rooms"
        upload["file"] = webtest.Upload(
            "rooms.csv", b"id,name,site,floor,adjacent\r\nk,Kitchen,oak,,hall\r\n"
        )
        page = upload.submit(status=303).follow(headers=HTML)
        assert "1 created, 0 updated, 0 unchanged" in page.text

        upload = page.forms["import"]
        upload["kind"] = "beacons"
        upload["file"] = webtest.Upload(
            "beacons.csv", b"id,room,label\r\nb2,k,\r\nb3,attic,\r\n"
        )
        page = upload.submit(status=400)
        assert (
            "line 3, room: no room 'attic'"
            in page.html.select_one("#import-errors").text
        )
        db.rollback()
        assert db.get(Beacon, "b2") is None

    def test_a_file_that_is_not_json_is_shown_next_to_the_field(self, house, db):
        upload = form(house, "/admin/house", "import")
        upload["kind"] = "rooms"
        upload["file"] = webtest.Upload("rooms.json", b"{not json")
        page = upload.submit(headers=HTML, status=400)
        assert page.content_type == "text/html"
        assert "not valid JSON" in page.html.select_one("#import-file-error").text
        assert page.html.select_one("#import-file")["aria-invalid"] == "true"

    def test_export_links(self, house):
        page = house.get("/admin/house", headers=HTML)
        link = page.html.select_one("#export-rooms-csv")["href"]
        assert house.get(link).text.splitlines()[1] == "hall,Hall,oak,,,"


class TestDevices:
    def test_badge_wearer_and_times_in_the_site_timezone(self, house, db):
        gateway = webtest.TestApp(house.app, extra_environ={"REMOTE_ADDR": "10.0.0.9"})
        gateway.post_json(
            "/rssi_readings",
            {"badge_id": "B1", "pi_id": "pi-1", "beacons": {"b1": -60}},
            status=201,
        )
        house.app.registry[ACTIVITY].flush()
        edit = form(house, "/admin/house/badges/B1", "edit-badge")
        edit["wearer"], edit["site"] = "Mrs Bennet", "oak"
        page = edit.submit(status=303).follow(headers=HTML)
        row = page.html.select_one('tr[data-badge="B1"]')
        assert "Mrs Bennet" in row.text
        assert "JST" in row.text and "(Asia/Tokyo)" in row.text
        db.rollback()
        event = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "badge.update")
        ).one()
        assert event.details == {
            "wearer": "changed",
            "site": {"from": None, "to": "oak"},
        }

    def test_describe_a_gateway_never_heard(self, house):
        edit = form(house, "/admin/house/gateways/pi-9", "edit-gateway")
        edit["name"], edit["site"] = "Attic Pi", "oak"
        page = edit.submit(status=303).follow(headers=HTML)
        assert "Attic Pi" in page.html.select_one('tr[data-gateway="pi-9"]').text

    @pytest.mark.parametrize("kind", ["badge", "gateway"])
    # A NUL would be refused by PostgreSQL in the query's text: not looked up.
    @pytest.mark.parametrize("device_id", ["a%20b", "a%00b"])
    def test_a_refused_id_is_shown(self, house, kind, device_id):
        # A page for an id no device can have is not found; its form, posted
        # all the same, is refused with the reason shown.
        url = f"/admin/house/{kind}s/{device_id}"
        house.get(url, headers=HTML, status=404)
        token = house.get("/login", headers=HTML).forms["login"]["csrf_token"].value
        page = house.post(
            url, {"csrf_token": token, "site": ""}, headers=HTML, status=400
        )
        assert "printable characters" in page.html.select_one("#id-error").text


class TestUnplaced:
    def test_place_an_unknown_beacon_and_badge(self, house):
        gateway = webtest.TestApp(house.app, extra_environ={"REMOTE_ADDR": "10.0.0.9"})
        gateway.post_json(
            "/rssi_readings",
            {"badge_id": "B-new", "pi_id": "pi-1", "beacons": {"b-new": -60}},
            status=201,
        )
        house.app.registry[ACTIVITY].flush()
        page = house.get("/admin/house/unplaced", headers=HTML)
        assert page.html.select_one('tr[data-beacon="b-new"]')
        assert page.html.select_one('tr[data-badge="B-new"]')

        place = page.forms["place-beacon-1"]
        place["room"] = "hall"
        page = place.submit(status=303).follow(headers=HTML)
        assert "Saved beacon b-new (in hall)." in page.text
        place = page.forms["place-badge-1"]
        place["site"] = "oak"
        page = place.submit(status=303).follow(headers=HTML)
        assert page.html.select_one("#unplaced-beacons tr.empty")
        assert page.html.select_one("#unplaced-badges tr.empty")
