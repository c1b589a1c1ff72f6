"""Import and export of rooms and beacons, CSV and JSON: all or nothing,
errors by line or index, idempotent."""

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from stethoscope.audit.models import AuditEvent
from stethoscope.registry.models import Beacon, Room, room_adjacency
from tests.functional.test_registry_api import Api

UUID = "0b7e3a52-6f1c-4e43-9a57-2d7c1f0f4b11"
ROOMS_CSV = (
    "id,name,site,floor,adjacent\r\n"
    f"lounge,Lounge,oak,0,hall\r\n"
    f"hall,Hall,oak,,lounge;{UUID}\r\n"
    f"{UUID},Kitchen,oak,1,\r\n"
    "porch,Porch,elm,,\r\n"
)


@pytest.fixture
def api(admin):
    api = Api(admin)
    api.post("/sites", {"id": "oak", "name": "Oak", "timezone": "Europe/London"})
    api.post("/sites", {"id": "elm", "name": "Elm", "timezone": "UTC"})
    return api


def snapshot(db):
    db.rollback()
    rooms = [
        (r.id, r.name, r.site_id, r.floor, r.max_stay_minutes)
        for r in db.scalars(select(Room).order_by(Room.id))
    ]
    pairs = sorted(db.execute(select(room_adjacency)).all())
    beacons = [
        (b.id, b.room_id, b.label)
        for b in db.scalars(select(Beacon).order_by(Beacon.id))
    ]
    return rooms, pairs, beacons


def audit_count(db):
    db.rollback()
    return db.scalar(select(func.count()).select_from(AuditEvent))


class TestRooms:
    def test_csv_import_is_idempotent_and_round_trips(self, api, db):
        first = api.raw("/import/rooms", ROOMS_CSV.encode(), "text/csv").json
        assert (first["created"], first["updated"], first["unchanged"]) == (4, 0, 0)
        assert api.get(f"/rooms/{UUID}").json["adjacent"] == ["hall"]
        assert api.get("/rooms/lounge").json["adjacent"] == ["hall"]
        stored = snapshot(db)

        again = api.raw("/import/rooms", ROOMS_CSV.encode(), "text/csv").json
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 4)
        assert snapshot(db) == stored

        exported = api.get("/export/rooms?format=csv")
        assert exported.content_type == "text/csv"
        assert "attachment" in exported.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {row["id"]: row["adjacent"] for row in rows}["hall"] == f"{UUID};lounge"
        back = api.raw("/import/rooms", exported.body, "text/csv").json
        assert back["unchanged"] == 4 and back["created"] == back["updated"] == 0

        only_elm = api.get("/export/rooms?format=csv&site=elm").text
        assert only_elm.splitlines()[1:] == ["porch,Porch,elm,,,"]

    def test_csv_export_writes_formula_names_as_text_and_imports_them_back(
        self, api, db
    ):
        """A name or id a spreadsheet would run (=, +, -, @) gets a quote;
        the floor, a number, does not; the import reads the cells back."""
        api.post(
            "/rooms",
            {
                "id": "-cellar",
                "name": '=HYPERLINK("http://evil.example")',
                "site": "oak",
            },
        )
        api.post(
            "/rooms", {"id": "attic", "name": "+Attic", "site": "oak", "floor": -1}
        )
        api.post("/rooms", {"id": "den", "name": "Den", "site": "oak"})
        stored = snapshot(db)

        exported = api.get("/export/rooms?format=csv").text
        assert exported.splitlines()[1:] == [
            '\'-cellar,"\'=HYPERLINK(""http://evil.example"")",oak,,,',
            "attic,'+Attic,oak,-1,,",
            "den,Den,oak,,,",
        ]
        back = api.raw("/import/rooms", exported.encode(), "text/csv").json
        assert back["unchanged"] == 3 and back["created"] == back["updated"] == 0
        assert snapshot(db) == stored

    def test_json_round_trip_and_update(self, api, db):
        api.raw("/import/rooms", ROOMS_CSV.encode(), "text/csv")
        exported = api.get("/export/rooms?format=json").json
        assert set(exported) == {"rooms"}
        for room in exported["rooms"]:
            if room["id"] == "porch":
                room["name"] = "Front porch"
        result = api.raw(
            "/import/rooms",
            json.dumps(exported).encode(),
            "application/json",
        ).json
        assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 3)
        assert result["updated_ids"] == ["porch"]
        assert api.get("/rooms/porch").json["name"] == "Front porch"
        # A bare list works too.
        bare = api.raw(
            "/import/rooms",
            b'[{"id": "attic", "name": "Attic", "site": "oak", "floor": 2, '
            b'"adjacent": ["hall"]}]',
            "application/json",
        ).json
        assert bare["created"] == 1
        assert "attic" in api.get("/rooms/hall").json["adjacent"]

    def test_errors_name_line_and_field_and_nothing_is_written(self, api, db):
        before, events = snapshot(db), audit_count(db)
        bad = (
            "id,name,site,floor,adjacent\r\n"
            "lounge,Lounge,oak,0,\r\n"
            "hall,,oak,,\r\n"
            "bad id,X,oak,,\r\n"
            "k,Kitchen,nowhere,,\r\n"
            "p,Porch,elm,,lounge\r\n"
            "q,Q,oak,high,\r\n"
            "lounge,Again,oak,,\r\n"
        )
        response = api.raw("/import/rooms", bad.encode(), "text/csv", status=400)
        assert [e["field"] for e in response.json["errors"]] == [
            "line 3.name",
            "line 4.id",
            "line 5.site",
            "line 7.floor",
            "line 8.id",
            "line 6.adjacent",
        ]
        assert snapshot(db) == before
        assert audit_count(db) == events

    def test_json_errors_by_index(self, api, db):
        response = api.raw(
            "/import/rooms",
            b'[{"id": "a", "name": "A", "site": "oak"}, {"id": "b", "site": "oak"}, 7]',
            "application/json",
            status=400,
        )
        assert response.json["errors"] == [
            {"field": "2", "message": "must be an object"}
        ]
        response = api.raw(
            "/import/rooms",
            b'[{"id": "a", "name": "A", "site": "oak"}, {"id": "b", "site": "oak"}]',
            "application/json",
            status=400,
        )
        assert [e["field"] for e in response.json["errors"]] == ["1.name"]
        assert snapshot(db)[0] == []

    def test_body_limits(self, api):
        api.raw("/import/rooms", b"x" * ((1 << 20) + 1), "text/csv", status=413)
        api.raw("/import/rooms", b"id,name", "application/xml", status=415)
        api.raw("/import/rooms", b"\xff\xfe", "text/csv", status=400)
        api.get("/export/rooms?format=xml", status=400)

    def test_audited_once_per_file(self, api, db):
        api.raw("/import/rooms", ROOMS_CSV.encode(), "text/csv")
        db.rollback()
        event = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "room.import")
        ).one()
        assert event.details["created"] == 4 and event.details["format"] == "csv"

    def test_max_stay_minutes_imported_kept_when_absent_and_exported(self, api, db):
        api.raw("/import/rooms", ROOMS_CSV.encode(), "text/csv")
        limits = (
            "id,name,site,floor,max_stay_minutes,adjacent\r\n"
            "lounge,Lounge,oak,0,45,hall\r\n"
            f"hall,Hall,oak,,,lounge;{UUID}\r\n"
        )
        result = api.raw("/import/rooms", limits.encode(), "text/csv").json
        assert (result["updated_ids"], result["unchanged"]) == (["lounge"], 1)
        assert api.get("/rooms/lounge").json["max_stay_minutes"] == 45

        # A file of the columns before max_stay_minutes keeps the limits.
        again = api.raw("/import/rooms", ROOMS_CSV.encode(), "text/csv").json
        assert again["unchanged"] == 4
        assert api.get("/rooms/lounge").json["max_stay_minutes"] == 45

        exported = api.get("/export/rooms?format=csv&site=oak").text.splitlines()
        assert exported[0] == "id,name,site,floor,max_stay_minutes,adjacent"
        assert "lounge,Lounge,oak,0,45,hall" in exported
        as_json = api.get("/export/rooms?format=json&site=oak").json["rooms"]
        assert {r["id"]: r["max_stay_minutes"] for r in as_json}["lounge"] == 45

        # An empty cell clears it; a bad one refuses the file, naming it.
        cleared = limits.replace(",45,", ",,")
        assert api.raw("/import/rooms", cleared.encode(), "text/csv").json[
            "updated_ids"
        ] == ["lounge"]
        assert api.get("/rooms/lounge").json["max_stay_minutes"] is None
        stored = snapshot(db)
        bad = limits.replace(",45,", ",0,").replace(
            "hall,Hall,oak,,,", "hall,Hall,oak,,x,"
        )
        response = api.raw("/import/rooms", bad.encode(), "text/csv", status=400)
        assert [e["field"] for e in response.json["errors"]] == [
            "line 2.max_stay_minutes",
            "line 3.max_stay_minutes",
        ]
        assert snapshot(db) == stored


class TestBeacons:
    def test_round_trip(self, api, db):
        house_rooms = "id,name,site,floor,adjacent\r\nhall,Hall,oak,,\r\n"
        api.raw("/import/rooms", house_rooms.encode(), "text/csv")
        body = "id,room,label\r\nb1,hall,door\r\nb2,,\r\n"
        first = api.raw("/import/beacons", body.encode(), "text/csv").json
        assert (first["created"], first["updated"], first["unchanged"]) == (2, 0, 0)
        again = api.raw("/import/beacons", body.encode(), "text/csv").json
        assert again["unchanged"] == 2
        exported = api.get("/export/beacons?format=csv").text
        assert exported.splitlines() == ["id,room,label", "b1,hall,door", "b2,,"]
        as_json = api.get("/export/beacons?format=json").json
        assert as_json == {
            "beacons": [
                {"id": "b1", "room": "hall", "label": "door"},
                {"id": "b2", "room": None, "label": None},
            ]
        }
        moved = api.raw(
            "/import/beacons",
            b'[{"id": "b2", "room": "hall"}]',
            "application/json",
        ).json
        assert moved["updated_ids"] == ["b2"]

    def test_unknown_room_refuses_the_file(self, api, db):
        body = "id,room,label\r\nb1,,\r\nb2,attic,\r\n"
        response = api.raw("/import/beacons", body.encode(), "text/csv", status=400)
        assert response.json["errors"] == [
            {"field": "line 3.room", "message": "no room 'attic'"}
        ]
        assert snapshot(db)[2] == []
