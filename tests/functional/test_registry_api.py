"""The registry's JSON API: sites, rooms, beacons, gateways, badges, unplaced."""

import datetime
import threading
import uuid

import pytest
import sqlalchemy
import webtest
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.config import configure
from stethoscope.labels.models import TrainingRun
from stethoscope.registry.models import Beacon, Room, Site, room_adjacency
from stethoscope.singletons import ACTIVITY, DATABASE
from tests.conftest import login

HTML = {"Accept": "text/html"}


def csrf(app) -> dict:
    """The X-CSRF-Token header of ``app``'s session."""
    token = app.get("/login", headers=HTML).forms["login"]["csrf_token"].value
    return {"X-CSRF-Token": token}


class Api:
    """An admin TestApp that sends its CSRF token with every write."""

    def __init__(self, app):
        self.app = app
        self.headers = csrf(app)

    def get(self, url, status=200, **kw):
        return self.app.get(url, status=status, **kw)

    def post(self, url, body, status=201):
        return self.app.post_json(url, body, headers=self.headers, status=status)

    def put(self, url, body, status=200):
        return self.app.put_json(url, body, headers=self.headers, status=status)

    def delete(self, url, status=204):
        return self.app.delete(url, headers=self.headers, status=status)

    def raw(self, url, body: bytes, content_type, status=200):
        return self.app.post(
            url,
            body,
            headers={**self.headers, "Content-Type": content_type},
            status=status,
        )


@pytest.fixture
def api(admin):
    return Api(admin)


def house(api):
    api.post("/sites", {"id": "oak", "name": "Oak House", "timezone": "Europe/London"})
    api.post("/sites", {"id": "elm", "name": "Elm", "timezone": "America/New_York"})
    api.post("/rooms", {"id": "lounge", "name": "Lounge", "site": "oak", "floor": 0})
    api.post(
        "/rooms",
        {"id": "hall", "name": "Hall", "site": "oak", "adjacent": ["lounge"]},
    )


def events(db, prefix=""):
    db.rollback()
    return [
        (e.action, e.target, e.details)
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
        if e.action.startswith(prefix) and not e.action.startswith("login")
    ]


def errors(response):
    return [(e["field"], e["message"]) for e in response.json["errors"]]


class TestSites:
    def test_create_list_update_delete(self, api, db):
        created = api.post(
            "/sites", {"id": "oak", "name": " Oak ", "timezone": "Europe/London"}
        ).json
        assert created["name"] == "Oak" and created["timezone"] == "Europe/London"
        assert [s["id"] for s in api.get("/sites").json["sites"]] == ["oak"]
        updated = api.put("/sites/oak", {"timezone": "Europe/Paris"}).json
        assert updated == {**created, "timezone": "Europe/Paris"}
        api.delete("/sites/oak")
        api.get("/sites/oak", status=404)
        assert events(db, "site") == [
            ("site.create", "oak", {"name": "Oak", "timezone": "Europe/London"}),
            (
                "site.update",
                "oak",
                {"timezone": {"from": "Europe/London", "to": "Europe/Paris"}},
            ),
            ("site.delete", "oak", None),
        ]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"id": "x", "name": "X", "timezone": "Mars/Olympus"}, "timezone"),
            ({"id": "x", "name": "X", "timezone": "../../etc/passwd"}, "timezone"),
            ({"id": "has space", "name": "X", "timezone": "UTC"}, "id"),
            ({"id": "x" * 65, "name": "X", "timezone": "UTC"}, "id"),
            ({"id": "x", "name": "", "timezone": "UTC"}, "name"),
            ({"id": "x", "name": 5, "timezone": "UTC"}, "name"),
        ],
    )
    def test_invalid_values_name_the_field(self, api, db, body, field):
        response = api.post("/sites", body, status=400)
        assert response.json["error"] == "invalid"
        assert errors(response)[0][0] == field
        assert events(db, "site") == []

    def test_duplicate_id_is_a_conflict(self, api):
        api.post("/sites", {"id": "oak", "name": "Oak", "timezone": "UTC"})
        response = api.post(
            "/sites", {"id": "oak", "name": "Oak", "timezone": "UTC"}, status=409
        )
        assert response.json["error"] == "conflict"

    def test_a_site_with_rooms_is_not_deleted(self, api):
        house(api)
        response = api.delete("/sites/oak", status=409)
        assert "2 rooms" in response.json["message"]

    def test_a_body_that_is_not_json(self, api):
        api.raw("/sites", b"{nope", "application/json", status=400)
        api.raw("/sites", b"id=x", "application/x-www-form-urlencoded", status=415)
        api.raw("/sites", b"[]", "application/json", status=400)

    def test_a_body_too_large(self, api):
        body = b'{"name": "' + b"x" * (70 << 10) + b'"}'
        api.raw("/sites", body, "application/json", status=413)


class TestRooms:
    def test_uuid_ids_and_symmetric_adjacency(self, api, db):
        house(api)
        room_id = str(uuid.uuid4())
        api.post(
            "/rooms",
            {"id": room_id, "name": "Kitchen", "site": "oak", "adjacent": ["hall"]},
        )
        assert api.get(f"/rooms/{room_id}").json["adjacent"] == ["hall"]
        assert api.get("/rooms/hall").json["adjacent"] == sorted(["lounge", room_id])
        assert api.get("/rooms/lounge").json["adjacent"] == ["hall"]

        api.put("/rooms/hall", {"adjacent": [room_id]})
        assert api.get("/rooms/lounge").json["adjacent"] == []
        db.rollback()
        pairs = set(db.execute(select(room_adjacency)).all())
        assert pairs == {("hall", room_id), (room_id, "hall")}

    def test_an_id_with_a_slash(self, api):
        house(api)
        api.post("/rooms", {"id": "wing/a", "name": "A", "site": "oak"})
        assert api.get("/rooms/wing/a").json["id"] == "wing/a"

    def test_adjacent_rooms_must_be_of_the_same_site(self, api, db):
        house(api)
        response = api.post(
            "/rooms",
            {"id": "porch", "name": "Porch", "site": "elm", "adjacent": ["hall"]},
            status=400,
        )
        assert errors(response)[0][0] == "adjacent"
        assert "site 'oak'" in errors(response)[0][1]
        api.get("/rooms/porch", status=404)
        response = api.put("/rooms/hall", {"adjacent": ["hall"]}, status=400)
        assert errors(response)[0][0] == "adjacent"

    def test_moving_a_room_to_another_site_drops_its_adjacency(self, api):
        house(api)
        api.put("/rooms/hall", {"site": "elm"})
        assert api.get("/rooms/hall").json["adjacent"] == []
        assert api.get("/rooms/lounge").json["adjacent"] == []

    def test_list_by_site_and_floor_validation(self, api):
        house(api)
        api.post("/rooms", {"id": "porch", "name": "Porch", "site": "elm"})
        assert [r["id"] for r in api.get("/rooms?site=elm").json["rooms"]] == ["porch"]
        assert errors(api.get("/rooms?site=nope", status=400))[0][0] == "site"
        for floor in ("one", 1.5, True, 9999):
            response = api.put("/rooms/hall", {"floor": floor}, status=400)
            assert errors(response)[0][0] == "floor"
        assert api.put("/rooms/hall", {"floor": None}).json["floor"] is None
        response = api.post("/rooms", {"id": "x", "name": "X", "site": "no"}, 400)
        assert errors(response)[0][0] == "site"

    def test_delete_unplaces_beacons_and_drops_adjacency(self, api, db):
        house(api)
        api.post("/beacons", {"id": "b1", "room": "lounge"})
        api.delete("/rooms/lounge")
        assert api.get("/beacons/b1").json["room"] is None
        assert api.get("/rooms/hall").json["adjacent"] == []

    def test_a_room_with_training_runs_is_not_deleted(self, api, db, engine):
        house(api)
        from sqlalchemy.orm import Session

        from stethoscope.db import utcnow

        with Session(engine) as session, session.begin():
            session.add(
                TrainingRun(
                    badge_id="B1",
                    room_id="lounge",
                    started_at=utcnow(),
                    created_by="boss",
                )
            )
        response = api.delete("/rooms/lounge", status=409)
        assert "training run" in response.json["message"]
        assert api.get("/rooms/lounge").json["id"] == "lounge"

    def test_audit(self, api, db):
        house(api)
        api.put("/rooms/lounge", {"name": "Big lounge", "adjacent": []})
        assert events(db, "room")[-1] == (
            "room.update",
            "lounge",
            {
                "name": {"from": "Lounge", "to": "Big lounge"},
                "adjacent": {"added": [], "removed": ["hall"]},
            },
        )


class TestMaxStay:
    """A room's long-stay limit (stethoscope.alerts' long_stay)."""

    def test_set_read_change_and_clear(self, api, db):
        house(api)
        body = {"id": "bath", "name": "Bathroom", "site": "oak"}
        room = api.post("/rooms", {**body, "max_stay_minutes": 30}).json
        assert room["max_stay_minutes"] == 30
        assert api.get("/rooms/bath").json["max_stay_minutes"] == 30
        assert api.get("/rooms/lounge").json["max_stay_minutes"] is None
        listed = {
            r["id"]: r["max_stay_minutes"] for r in api.get("/rooms").json["rooms"]
        }
        assert listed == {"bath": 30, "hall": None, "lounge": None}

        # Left out: kept; given: changed; null: no limit.
        assert api.put("/rooms/bath", {"name": "Bath"}).json["max_stay_minutes"] == 30
        assert (
            api.put("/rooms/bath", {"max_stay_minutes": 1440}).json["max_stay_minutes"]
            == 1440
        )
        assert (
            api.put("/rooms/bath", {"max_stay_minutes": None}).json["max_stay_minutes"]
            is None
        )
        db.rollback()
        assert db.get(Room, "bath").max_stay_minutes is None
        assert [e for e in events(db, "room") if e[1] == "bath"][1:] == [
            ("room.update", "bath", {"name": {"from": "Bathroom", "to": "Bath"}}),
            (
                "room.update",
                "bath",
                {"max_stay_minutes": {"from": 30, "to": 1440}},
            ),
            (
                "room.update",
                "bath",
                {"max_stay_minutes": {"from": 1440, "to": None}},
            ),
        ]

    @pytest.mark.parametrize("value", [0, -5, 1441, 1.5, True, "half an hour", [30]])
    def test_out_of_bounds_is_refused_by_name(self, api, db, value):
        house(api)
        api.put("/rooms/hall", {"max_stay_minutes": 20})
        response = api.put("/rooms/hall", {"max_stay_minutes": value}, status=400)
        assert [field for field, _ in errors(response)] == ["max_stay_minutes"]
        body = {"id": "bath", "name": "Bath", "site": "oak", "max_stay_minutes": value}
        response = api.post("/rooms", body, status=400)
        assert [field for field, _ in errors(response)] == ["max_stay_minutes"]
        assert api.get("/rooms/hall").json["max_stay_minutes"] == 20
        api.get("/rooms/bath", status=404)

    def test_the_alerts_read_the_limit_set_here(self, api, db):
        from stethoscope.alerts.conditions import room_limits

        house(api)
        api.put("/rooms/lounge", {"max_stay_minutes": 45})
        db.rollback()
        assert room_limits(db, "oak") == {
            "hall": ("Hall", None),
            "lounge": ("Lounge", 45),
        }


class TestTheFileActionsLeaveEveryIdFree:
    """Every path below /rooms/ and /beacons/ is an item's: the file actions
    are /import/… and /export/…, so a room may be called "import"."""

    @pytest.mark.parametrize("room_id", ["import", "export"])
    def test_a_room_named_like_an_action(self, api, room_id):
        house(api)
        api.post("/rooms", {"id": room_id, "name": "Odd", "site": "oak"})
        assert api.get(f"/rooms/{room_id}").json["name"] == "Odd"
        api.put(f"/rooms/{room_id}", {"name": "Odder"})
        assert api.get(f"/rooms/{room_id}").json["name"] == "Odder"
        api.delete(f"/rooms/{room_id}")
        response = api.get(f"/rooms/{room_id}", status=404)
        assert response.json["message"] == f"no room {room_id!r}"

    @pytest.mark.parametrize("beacon_id", ["import", "export"])
    def test_a_beacon_named_like_an_action(self, api, beacon_id):
        api.post("/beacons", {"id": beacon_id, "label": "odd"})
        assert api.get(f"/beacons/{beacon_id}").json["label"] == "odd"
        api.delete(f"/beacons/{beacon_id}")

    def test_allow_lists_only_methods_that_answer(self, api):
        house(api)
        api.post("/rooms", {"id": "import", "name": "Odd", "site": "oak"})
        response = api.app.options("/rooms/import", status=405)
        allowed = response.headers["Allow"].split(", ")
        assert allowed == ["DELETE", "GET", "HEAD", "PUT"]
        assert "view" not in response.json["message"]
        api.get("/rooms/import")
        api.app.head("/rooms/import", status=200)
        api.put("/rooms/import", {"floor": 1})
        api.delete("/rooms/import")
        response = api.app.options("/import/rooms", status=405)
        assert response.headers["Allow"] == "POST"

    def test_a_view_that_does_not_match_is_never_named(self, app_settings):
        # A route whose only view has a predicate besides its method: Pyramid
        # says "predicate mismatch for view <name>", which is ours to know.
        config = configure(app_settings)
        config.add_route("test.picky", "/picky")
        config.add_view(
            lambda request: Response("ok"),
            route_name="test.picky",
            request_method="GET",
            request_param="yes",
            permission=NO_PERMISSION_REQUIRED,
        )
        app = webtest.TestApp(config.make_wsgi_app())
        assert app.get("/picky?yes=1").text == "ok"
        response = app.get("/picky", status=404)
        assert response.json["message"] == "nothing here: /picky"

    @pytest.mark.parametrize("url", ["/rooms", "/beacons", "/export/rooms"])
    def test_an_empty_query_value_is_refused_by_name(self, api, url):
        response = api.get(f"{url}?site=", status=400)
        assert errors(response)[0][0] == "site"

    def test_an_unknown_query_parameter_is_refused(self, api):
        response = api.get("/rooms?sites=oak", status=400)
        assert errors(response)[0] == ("sites", "is not a known field")


class TestBeacons:
    def test_create_place_relabel_delete(self, api, db):
        house(api)
        created = api.post("/beacons", {"id": "b-1", "label": "by the door"}).json
        assert created["room"] is None and created["first_heard"] is None
        api.put("/beacons/b-1", {"room": "hall"})
        api.put("/beacons/b-1", {"label": "shelf"})
        assert api.get("/beacons/b-1").json["room"] == "hall"
        assert [b["id"] for b in api.get("/beacons?site=oak").json["beacons"]] == [
            "b-1"
        ]
        response = api.put("/beacons/b-1", {"room": "attic"}, status=400)
        assert errors(response)[0][0] == "room"
        api.delete("/beacons/b-1")
        assert [a for a, _, _ in events(db, "beacon")] == [
            "beacon.create",
            "beacon.place",
            "beacon.update",
            "beacon.delete",
        ]


class TestGatewaysAndBadges:
    def test_a_gateway_never_heard_is_created(self, api, db):
        house(api)
        response = api.put(
            "/registry/gateways/pi-1", {"name": "Hall Pi", "site": "oak"}, status=201
        )
        assert response.status_int == 201
        assert response.json["posts"] == 0 and response.json["last_seen"] is None
        api.put("/registry/gateways/pi-1", {"site": None}, status=200)
        assert api.get("/registry/gateways/pi-1").json["site"] is None
        # The "seen" list leaves it out: it has never posted.
        assert api.get("/gateways").json["gateways"] == []
        assert [a for a, _, _ in events(db, "gateway")] == [
            "gateway.create",
            "gateway.update",
        ]

    def test_badge_wearer_is_never_logged(self, api, db):
        house(api)
        api.put(
            "/registry/badges/B1", {"wearer": "Mrs Bennet", "site": "oak"}, status=201
        )
        api.put("/registry/badges/B1", {"wearer": "Mr Darcy", "active": False})
        badge = api.get("/registry/badges/B1").json
        assert badge["wearer"] == "Mr Darcy" and badge["active"] is False
        response = api.put("/registry/badges/B1", {"active": "no"}, status=400)
        assert errors(response)[0][0] == "active"
        db.rollback()
        for event in db.scalars(select(AuditEvent)):
            text = repr((event.target, event.details))
            assert "Bennet" not in text and "Darcy" not in text
        assert events(db, "badge")[-1][2] == {
            "wearer": "changed",
            "active": {"from": True, "to": False},
        }


class TestUnplaced:
    def test_unknown_beacons_and_badges_from_readings(self, api, db):
        # A gateway posting to the same app (so the same activity tracker).
        gateway = webtest.TestApp(
            api.app.app, extra_environ={"REMOTE_ADDR": "10.0.0.9"}
        )
        house(api)
        api.post("/beacons", {"id": "b-known", "room": "hall"})
        api.put("/registry/badges/B-placed", {"site": "oak"}, status=201)
        for badge, beacons in (
            ("B-new", {"b-known": -50, "b-new": -70}),
            ("B-placed", {"b-other": -60}),
        ):
            gateway.post_json(
                "/rssi_readings",
                {"badge_id": badge, "pi_id": "pi-1", "beacons": beacons},
                status=201,
            )
        api.app.app.registry[ACTIVITY].flush()
        unplaced = api.get("/registry/unplaced").json
        assert {b["id"] for b in unplaced["beacons"]} == {"b-new", "b-other"}
        assert [b["id"] for b in unplaced["badges"]] == ["B-new"]
        assert "wearer" not in unplaced["badges"][0]
        db.rollback()
        assert db.get(Beacon, "b-known").last_heard is not None


class TestAccess:
    @pytest.mark.parametrize("role", ["viewer", "staff"])
    def test_lower_roles_read_the_house_but_not_badges(
        self, make_app, create_user, role, api
    ):
        house(api)
        app = make_app()
        login(app, *create_user("someone", role))
        for url in ("/sites", "/sites/oak", "/rooms", "/rooms/hall", "/beacons"):
            app.get(url, status=200)
        app.get("/registry/gateways", status=200)
        app.get("/export/rooms?format=csv", status=200)
        for url in ("/registry/badges", "/registry/badges/B1", "/registry/unplaced"):
            app.get(url, status=403)
        headers = csrf(app)
        app.post_json(
            "/sites",
            {"id": "x", "name": "X", "timezone": "UTC"},
            headers=headers,
            status=403,
        )
        app.put_json("/rooms/hall", {"name": "X"}, headers=headers, status=403)
        app.delete("/rooms/hall", headers=headers, status=403)
        app.put_json("/registry/badges/B1", {}, headers=headers, status=403)
        app.post(
            "/import/rooms",
            b"[]",
            headers={**headers, "Content-Type": "application/json"},
            status=403,
        )

    def test_anonymous_gets_401(self, anonymous):
        for url in ("/sites", "/rooms", "/beacons", "/registry/unplaced"):
            anonymous.get(url, status=401)
        anonymous.post_json("/sites", {}, status=401)

    def test_writes_need_the_csrf_header(self, admin):
        admin.post_json(
            "/sites", {"id": "x", "name": "X", "timezone": "UTC"}, status=403
        )


class TestSeenWhileFlushing:
    """GET /gateways adds this process's unwritten counts to the stored rows.
    A flush of this process (its own thread) that tries to land between the
    two reads waits until both are done: its rows are then neither counted
    twice (PostgreSQL reads what is committed when the SELECT starts) nor
    dropped (SQLite reads a snapshot the request may have taken before)."""

    @pytest.mark.parametrize("when", ["before", "after"])
    @pytest.mark.parametrize("listing", ["gateways", "badges"])
    def test_a_flush_never_lands_between_the_two_reads(self, testapp, when, listing):
        tracker = testapp.app.registry[ACTIVITY]
        at = datetime.datetime.now(datetime.UTC)
        for _ in range(3):
            tracker.record("pi-1", "badge-1", "192.0.2.1", at, duplicate=False)
        assert testapp.get(f"/{listing}").json[listing][0]["posts"] == 3

        # The flush thread starts just before or just after the list takes
        # the unwritten counts; the list goes on once the flush is done, or
        # is waiting for the list to finish.
        settled = threading.Event()

        def flush():
            tracker.flush()
            settled.set()

        flusher = threading.Thread(target=flush, name="test-flush")
        tracker._flush_lock = _Announcing(tracker._flush_lock, flusher, settled)
        original = tracker.pending

        def pending():
            copy = original() if when == "after" else None
            flusher.start()
            assert settled.wait(timeout=30), "the flush neither ended nor waited"
            return copy or original()

        tracker.pending = pending
        try:
            during = testapp.get(f"/{listing}").json[listing]
        finally:
            tracker.pending = original
        flusher.join(timeout=30)
        assert not flusher.is_alive()
        assert [(row["id"], row["posts"]) for row in during] == [
            (
                "pi-1" if listing == "gateways" else "badge-1",
                3,
            )
        ]
        # The flush landed after the list: written now, and still 3.
        assert tracker.pending() == ({}, {})
        assert testapp.get(f"/{listing}").json[listing][0]["posts"] == 3


class _Announcing:
    """A lock that sets ``waiting`` when ``thread`` has to wait for it."""

    def __init__(self, lock, thread, waiting):
        self.lock = lock
        self.thread = thread
        self.waiting = waiting

    def __enter__(self):
        if threading.current_thread() is self.thread and self.lock.locked():
            self.waiting.set()
        return self.lock.__enter__()

    def __exit__(self, *exc_info):
        return self.lock.__exit__(*exc_info)


@pytest.fixture
def first_insert_into(admin):
    """``first_insert_into(table, action)``: run ``action()`` just before the
    app's first INSERT into ``table``, that is after the view looked the row
    up and before it inserts it."""
    engine = admin.app.registry[DATABASE].engine
    listeners = []

    def arrange(table, action):
        done = []

        def before(conn, cursor, statement, parameters, context, executemany):
            if not done and statement.startswith(f"INSERT INTO {table} "):
                done.append(True)
                action()

        sqlalchemy.event.listen(engine, "before_cursor_execute", before)
        listeners.append(before)

    yield arrange
    for before in listeners:
        sqlalchemy.event.remove(engine, "before_cursor_execute", before)


# SQLite cannot interleave so: a write transaction holds the database's
# write lock from its start, and the activity flush waits for it.
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
class TestDescribingWhileFirstHeard:
    """The activity flush inserts a device's row when it is first heard, in
    a transaction of its own; when that commits between the view's look-up
    and its insert, the answer is the one the row being there would give."""

    def test_a_gateway(self, api, first_insert_into, db):
        tracker = api.app.app.registry[ACTIVITY]

        def heard():
            tracker.record("pi-new", "badge-1", "192.0.2.1", NOW, duplicate=False)
            tracker.flush()

        first_insert_into("gateways", heard)
        body = api.put("/registry/gateways/pi-new", {"name": "Hall"}, status=200).json
        assert (body["name"], body["posts"]) == ("Hall", 1)
        assert [action for action, *_ in events(db, "gateway.")] == ["gateway.update"]

    def test_a_badge(self, api, first_insert_into):
        tracker = api.app.app.registry[ACTIVITY]

        def heard():
            tracker.record("pi-1", "badge-new", "192.0.2.1", NOW, duplicate=False)
            tracker.flush()

        first_insert_into("badges", heard)
        body = api.put("/registry/badges/badge-new", {"wearer": "Ann"}, status=200)
        assert (body.json["wearer"], body.json["last_gateway_id"]) == ("Ann", "pi-1")

    def test_a_beacon(self, api, first_insert_into):
        tracker = api.app.app.registry[ACTIVITY]

        def heard():
            tracker.record_beacons(["b-new"], NOW)
            tracker.flush()

        first_insert_into("beacons", heard)
        # As when it was heard before: it exists (describe it with PUT).
        api.post("/beacons", {"id": "b-new", "label": "door"}, status=409)
        api.put("/beacons/b-new", {"label": "door"})

    def test_a_beacon_imported(self, api, first_insert_into, db):
        tracker = api.app.app.registry[ACTIVITY]

        def heard():
            tracker.record_beacons(["b-new"], NOW)
            tracker.flush()

        first_insert_into("beacons", heard)
        body = "id,room,label\r\nb-new,,door\r\nb-other,,\r\n"
        result = api.raw("/import/beacons", body.encode(), "text/csv").json
        assert (result["created_ids"], result["updated_ids"]) == (
            ["b-other"],
            ["b-new"],
        )
        db.rollback()
        beacon = db.get(Beacon, "b-new")
        assert (beacon.label, beacon.last_heard) == ("door", NOW)

    def test_two_admins_create_the_same_site(self, api, first_insert_into, engine):
        def other_admin():
            with Session(engine) as session, session.begin():
                session.add(Site(id="oak", name="Oak", timezone="Europe/London"))

        first_insert_into("sites", other_admin)
        site = {"id": "oak", "name": "Oak House", "timezone": "Europe/London"}
        api.post("/sites", site, status=409)

    def test_two_admins_create_the_same_room(self, api, first_insert_into, engine):
        house(api)

        def other_admin():
            with Session(engine) as session, session.begin():
                session.add(Room(id="attic", name="Attic", site_id="oak"))

        first_insert_into("rooms", other_admin)
        api.post("/rooms", {"id": "attic", "name": "Attic", "site": "oak"}, status=409)


NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)
