"""Locating over HTTP: location (raw, Bayes, smoothed), history and stays of
a day (across the site's clock changes), occupancy; refusals, privacy and
the audit log. A real small model, SQLite and PostgreSQL."""

import datetime
import hashlib

import orjson
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.ingest.models import Reading
from stethoscope.learning.artifacts import ModelStore
from stethoscope.learning.services import ModelService
from stethoscope.locating.locator import LOW_CONFIDENCE, NOTHING_HEARD
from stethoscope.registry.models import Badge, Beacon, Gateway
from stethoscope.singletons import HEALTH_MEMBERS, LOCATING_DAYS, LOCATING_FACTS
from tests.conftest import login
from tests.support.metrics import scrape
from tests.support.models import add_site, register_model

ROOMS = ["kitchen", "lounge", "hall"]
IN_KITCHEN = {"b-kitchen": -52, "b-lounge": -82, "b-hall": -81}
IN_LOUNGE = {"b-kitchen": -82, "b-lounge": -52, "b-hall": -81}
IN_HALL = {"b-kitchen": -82, "b-lounge": -81, "b-hall": -52}
# The model gives kitchen 2/3 and lounge 1/3 for this one.
BETWEEN = {"b-kitchen": -65, "b-lounge": -66, "b-hall": -80}
HEARD_IN = {"kitchen": IN_KITCHEN, "lounge": IN_LOUNGE, "hall": IN_HALL}
LONDON = "Europe/London"


@pytest.fixture
def app_settings(app_settings):
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def add_readings(engine, badge_id, readings, gateway_id="pi-1") -> None:
    """``readings``: (observed_at, beacons) pairs, stored as ingest would."""
    with Session(engine) as session, session.begin():
        for observed_at, beacons in readings:
            session.add(
                Reading(
                    badge_id=badge_id,
                    gateway_id=gateway_id,
                    received_at=observed_at,
                    observed_at=observed_at,
                    beacons=beacons,
                    badge_strength=None,
                    fingerprint=hashlib.md5(repr(beacons).encode()).hexdigest(),
                )
            )


def live(engine, badge_id, beacons, *, count=6, gateway_id="pi-1") -> None:
    """``count`` readings of ``beacons`` in the last half minute."""
    moment = now()
    add_readings(
        engine,
        badge_id,
        [
            (moment - datetime.timedelta(seconds=5 * (count - 1 - i)), beacons)
            for i in range(count)
        ],
        gateway_id,
    )


def activate(engine, model_dir, version_id) -> None:
    with Session(engine) as session, session.begin():
        ModelService(session, ModelStore(model_dir)).activate(version_id, actor="test")


@pytest.fixture
def model_dir(app_settings):
    return app_settings["stethoscope.model_dir"]


@pytest.fixture
def house(engine, model_dir):
    """Site rose (London) with an active model, gateway pi-1, badges b1 (Mrs
    B.) and b2 (Mr C.) of the site, every beacon heard just now; site oak
    with no model."""
    add_site(engine, "rose", ROOMS, timezone=LONDON)
    add_site(engine, "oak", ["study"], timezone="UTC")
    with Session(engine) as session, session.begin():
        session.add_all(
            [
                Gateway(id="pi-1", site_id="rose"),
                Gateway(id="pi-oak", site_id="oak"),
                Badge(id="b1", site_id="rose", wearer="Mrs B."),
                Badge(id="b2", site_id="rose", wearer="Mr C."),
                Badge(id="b-away", site_id="rose", wearer="Miss D."),
                *(
                    Beacon(id=f"b-{room}", room_id=room, last_heard=now())
                    for room in ROOMS
                ),
            ]
        )
    version = register_model(engine, model_dir, "rose", ROOMS)
    activate(engine, model_dir, version)
    return version


@pytest.fixture
def staff(make_app, create_user):
    app = make_app()
    login(app, *create_user("nurse", "staff"))
    return app


def csrf(app) -> dict:
    form = app.get("/login", headers={"Accept": "text/html"}).forms["login"]
    return {"X-CSRF-Token": form["csrf_token"].value}


def probabilities(rooms) -> list[float]:
    return [room[1] for room in rooms]


# ---- location -------------------------------------------------------------


def test_location(testapp, house, engine):
    live(engine, "b1", IN_KITCHEN)

    body = testapp.get("/badges/b1/location").json

    assert body["room_id"] == "kitchen" and body["room_name"] == "Kitchen"
    assert body["unknown"] is False and body["reason"] is None
    for key in ("raw", "smoothed"):
        assert sum(probabilities(body[key])) == pytest.approx(1)
        assert probabilities(body[key]) == sorted(probabilities(body[key]))[::-1]
        assert {room[0]: room[2] for room in body[key]} == {
            "kitchen": "Kitchen",
            "lounge": "Lounge",
            "hall": "Hall",
        }
    assert body["raw"][0][0] == body["smoothed"][0][0] == "kitchen"
    assert body["bayes"] is None
    assert body["reading"]["beacons"] == IN_KITCHEN
    assert body["reading"]["gateway"] == "pi-1"
    assert body["reading"]["imposter_beacons"] == []
    assert 0 <= body["reading"]["age_seconds"] < 30
    # December in London: GMT, and said so.
    assert body["reading"]["observed_at"].endswith("+00:00")
    assert body["since"] <= body["reading"]["observed_at"]
    assert body["model"]["version_id"] == house
    assert body["model"]["version"] == 1
    assert body["model"]["activated_at"] is not None
    assert body["dead_beacons"] == []


def test_priors_weigh_the_raw_probabilities(testapp, house, engine):
    live(engine, "b1", BETWEEN)
    priors = [["kitchen", 1], ["lounge", 4], ["attic", 0]]

    body = testapp.post_json(
        "/badges/b1/location", {"priors": priors}, headers=csrf(testapp)
    ).json

    raw = {room: p for room, p, _ in body["raw"]}
    assert body["raw"][0][0] == "kitchen" and raw["lounge"] > 0
    weights = {"kitchen": 1, "lounge": 4, "hall": 1}  # unlisted: 1; attic: no room
    total = sum(raw[room] * weights[room] for room in ROOMS)
    expected = {room: raw[room] * weights[room] / total for room in ROOMS}
    assert [room[0] for room in body["bayes"]][:2] == ["lounge", "kitchen"]
    for room_id, probability, name, weight in body["bayes"]:
        assert probability == pytest.approx(expected[room_id])
        assert weight == pytest.approx(weights[room_id] / 6)
        assert name == room_id.title()
    assert sum(probabilities(body["bayes"])) == pytest.approx(1)


@pytest.mark.parametrize(
    ("priors", "field"),
    [
        ([["kitchen", -1]], "priors.0.1"),
        ([["kitchen", True]], "priors.0.1"),
        ([["kitchen", "2"]], "priors.0.1"),
        ([["kitchen"]], "priors.0.1"),
        ([["kitchen", 1], ["kitchen", 2]], "priors"),
        ([["kitchen", 0], ["lounge", 0], ["hall", 0]], "priors"),
        ("kitchen", "priors"),
    ],
)
def test_bad_priors_are_400_naming_the_field(testapp, house, engine, priors, field):
    live(engine, "b1", IN_KITCHEN)

    response = testapp.post_json(
        "/badges/b1/location", {"priors": priors}, headers=csrf(testapp), status=400
    )

    assert response.json["errors"][0]["field"] == field


def test_imposters_and_nothing_known_heard(testapp, house, engine):
    live(engine, "b1", IN_KITCHEN, count=3)
    live(engine, "b1", {"b-neighbour": -40}, count=1)

    body = testapp.get("/badges/b1/location").json

    assert body["unknown"] is True
    assert body["reason"] == NOTHING_HEARD
    assert body["reading"]["imposter_beacons"] == ["b-neighbour"]


def test_unsure_is_unknown(testapp, house, engine):
    # One reading between kitchen and lounge, filtered from the prior.
    live(engine, "b1", BETWEEN, count=1)

    body = testapp.get("/badges/b1/location").json

    if body["probability"] < 0.5:
        assert (body["unknown"], body["reason"]) == (True, LOW_CONFIDENCE)
    else:
        assert body["unknown"] is False
    assert sum(probabilities(body["smoothed"])) == pytest.approx(1)


def test_a_badge_not_heard_lately_is_404(testapp, house, engine):
    add_readings(engine, "b1", [(now() - datetime.timedelta(seconds=90), IN_KITCHEN)])

    response = testapp.get("/badges/b1/location", status=404)
    assert "60 seconds" in response.json["message"]
    testapp.get("/badges/never-heard/location", status=404)


def test_a_site_without_a_model_is_503(testapp, house, engine):
    live(engine, "b-oak", IN_KITCHEN, gateway_id="pi-oak")

    response = testapp.get("/badges/b-oak/location", status=503)

    assert "oak" in response.json["message"]
    assert int(response.headers["Retry-After"]) > 0


def test_a_badge_at_no_site_is_404(testapp, house, engine):
    live(engine, "b-lost", IN_KITCHEN, gateway_id="pi-unplaced")

    response = testapp.get("/badges/b-lost/location", status=404)

    assert "no site" in response.json["message"]


def test_dead_beacons(make_app, create_user, house, engine):
    with Session(engine) as session, session.begin():
        session.get(Beacon, "b-hall").last_heard = now() - datetime.timedelta(hours=2)
    live(engine, "b1", IN_KITCHEN, count=3)
    live(engine, "b2", {"b-hall": -50}, count=3)
    app = make_app()
    login(app, *create_user("viewer", "viewer"))

    kitchen = app.get("/badges/b1/location").json
    hall = app.get("/badges/b2/location").json

    assert kitchen["dead_beacons"] == hall["dead_beacons"] == ["b-hall"]
    assert kitchen["room_id"] == "kitchen" and not kitchen["unknown"]
    # Only a dead beacon heard: the model is told it is dead, not heard.
    assert (hall["unknown"], hall["reason"]) == (True, NOTHING_HEARD)
    registry = app.app.registry
    health = registry[HEALTH_MEMBERS]["locating"](registry)
    assert health == {
        "status": "ok",
        "sites": {"rose": {"model_version": 1, "dead_beacons": ["b-hall"]}},
    }


# ---- occupancy --------------------------------------------------------------


def test_occupancy_agrees_with_location(make_app, create_user, house, engine):
    live(engine, "b1", IN_KITCHEN)
    live(engine, "b2", IN_HALL)
    live(engine, "b3", IN_HALL, count=3)  # of the site by its gateway
    live(engine, "b4", {"b-neighbour": -40}, count=2)
    add_readings(engine, "b5", [(now() - datetime.timedelta(seconds=90), IN_HALL)])
    live(engine, "b-oak", IN_KITCHEN, gateway_id="pi-oak")  # another site
    viewer = make_app()
    login(viewer, *create_user("viewer", "viewer"))

    body = viewer.get("/sites/rose/occupancy").json

    assert [room["room_id"] for room in body["rooms"]] == sorted(ROOMS)
    placed = {
        occupant["badge_id"]: (room["room_id"], occupant)
        for room in body["rooms"]
        for occupant in room["badges"]
    }
    assert {badge: room for badge, (room, _) in placed.items()} == {
        "b1": "kitchen",
        "b2": "hall",
        "b3": "hall",
    }
    assert [occupant["badge_id"] for occupant in body["unknown"]] == ["b4"]
    assert [badge["badge_id"] for badge in body["not_heard"]] == ["b-away", "b5"]
    occupants = [occupant for _, occupant in placed.values()] + body["unknown"]
    for occupant in occupants:
        location = viewer.get(f"/badges/{occupant['badge_id']}/location").json
        assert occupant["room_id"] == location["room_id"]
        assert occupant["confidence"] == pytest.approx(location["probability"])
        assert occupant["since"] == location["since"]
        assert occupant["unknown"] == location["unknown"]
        assert occupant["reason"] == location["reason"]
        assert occupant["last_heard"] == location["reading"]["observed_at"]
    # A viewer does not see who wears a badge.
    assert all(occupant["wearer"] is None for occupant in occupants)
    assert all(badge["wearer"] is None for badge in body["not_heard"])


def test_occupancy_names_wearers_for_staff(staff, house, engine):
    live(engine, "b1", IN_LOUNGE)

    body = staff.get("/sites/rose/occupancy").json

    lounge = next(room for room in body["rooms"] if room["room_id"] == "lounge")
    assert [(o["badge_id"], o["wearer"]) for o in lounge["badges"]] == [
        ("b1", "Mrs B.")
    ]
    assert {b["badge_id"]: b["wearer"] for b in body["not_heard"]} == {
        "b2": "Mr C.",
        "b-away": "Miss D.",
    }
    assert all(room["badges"] == [] for room in body["rooms"] if room is not lounge)


def test_occupancy_refusals(testapp, house):
    testapp.get("/sites/nowhere/occupancy", status=404)
    response = testapp.get("/sites/oak/occupancy", status=503)
    assert "oak" in response.json["message"]


# ---- history and stays ------------------------------------------------------

# 2026-03-29: London's clocks go forward at 01:00 GMT; the day has 23 hours.
SPRING = datetime.date(2026, 3, 29)
# 2026-10-25: back at 01:00 GMT (02:00 BST); 25 hours.
AUTUMN = datetime.date(2026, 10, 25)


def day_of_readings(engine, badge_id, day, step_seconds=300) -> list:
    """A reading every ``step_seconds`` of the site's local ``day``: kitchen
    until 08:00 local, lounge until 16:00, then the hall."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(LONDON)
    start = datetime.datetime.combine(day, datetime.time(), zone)
    end = datetime.datetime.combine(
        day + datetime.timedelta(days=1), datetime.time(), zone
    )
    moment = start.astimezone(datetime.UTC)
    readings = []
    while moment < end:
        hour = moment.astimezone(zone).hour
        room = "kitchen" if hour < 8 else "lounge" if hour < 16 else "hall"
        readings.append((moment, HEARD_IN[room]))
        moment += datetime.timedelta(seconds=step_seconds)
    add_readings(engine, badge_id, readings)
    return readings


def test_history_per_reading_across_the_spring_change(staff, house, engine):
    readings = day_of_readings(engine, "b1", SPRING)
    assert len(readings) == 23 * 12

    body = staff.get("/badges/b1/location_history?date=2026-03-29").json

    assert len(body) == len(readings)
    assert body[0] == ["2026-03-29T00:00:00+00:00", "kitchen"]
    assert body[12] == ["2026-03-29T02:00:00+01:00", "kitchen"]  # no 01:xx
    assert body[-1] == ["2026-03-29T23:55:00+01:00", "hall"]
    assert [room for _, room in body].count("lounge") == 8 * 12
    tail = staff.get(
        "/badges/b1/location_history?date=2026-03-29&offset=270&return_value=room_name"
    ).json
    assert tail == [[time, room.title()] for time, room in body[270:]]


@pytest.mark.parametrize(
    ("day", "hours", "midnight"),
    [
        ("2026-03-29", 23, "+00:00"),  # GMT at midnight, BST from 01:00 GMT
        ("2026-10-25", 25, "+01:00"),  # BST at midnight, GMT from 01:00 GMT
        ("2026-03-28", 24, "+00:00"),
    ],
)
def test_history_grains_across_clock_changes(
    staff, house, engine, day, hours, midnight
):
    day_of_readings(engine, "b1", datetime.date.fromisoformat(day))

    hourly = staff.get(f"/badges/b1/location_history?date={day}&grain=3600").json
    tens = staff.get(f"/badges/b1/location_history?date={day}&grain=600").json
    minutes = staff.get(f"/badges/b1/location_history?date={day}&grain=60").json

    assert len(hourly) == hours
    assert len(tens) == hours * 6
    assert len(minutes) == hours * 12  # a reading every 5 minutes
    assert hourly[0][0] == f"{day}T00:00:00{midnight}"
    assert hourly[-1][0].startswith(f"{day}T23:00:00")
    # Kitchen until 08:00 local: an hour less or more on the changing days.
    assert [room for _, room in hourly].count("kitchen") == 8 + hours - 24
    # Offsets count periods of the day: only what is new.
    later = staff.get(
        f"/badges/b1/location_history?date={day}&grain=3600&offset={hours - 3}"
    ).json
    assert later == hourly[-3:]
    if hours == 25:  # 01:00 twice, an hour apart
        assert [time for time, _ in hourly[1:3]] == [
            f"{day}T01:00:00+01:00",
            f"{day}T01:00:00+00:00",
        ]


def test_history_algorithms_and_priors(staff, house, engine):
    day_of_readings(engine, "b1", SPRING, step_seconds=900)
    url = "/badges/b1/location_history"

    raw = staff.get(f"{url}?date=2026-03-29&algorithm=raw").json
    smoothed = staff.get(f"{url}?date=2026-03-29").json
    bayes = staff.post_json(
        url,
        {"date": "2026-03-29", "priors": [["kitchen", 0], ["lounge", 0]]},
        headers=csrf(staff),
    ).json

    assert raw == smoothed  # clear readings: filtering changes nothing
    assert {room for _, room in bayes} == {"hall"}
    refused = staff.post_json(
        url,
        {"date": "2026-03-29", "algorithm": "raw", "priors": [["hall", 2]]},
        headers=csrf(staff),
        status=400,
    )
    assert refused.json["errors"][0]["field"] == "priors"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date=2026-3-29", "date"),
        ("date=1700000000", "date"),
        ("grain=120", "grain"),
        ("grain=sixty", "grain"),
        ("offset=-1", "offset"),
        ("algorithm=viterbi", "algorithm"),
        ("return_value=wearer", "return_value"),
        ("colour=red", "colour"),
    ],
)
def test_bad_history_options_are_400(staff, house, query, field):
    response = staff.get(f"/badges/b1/location_history?{query}", status=400)
    assert response.json["errors"][0]["field"] == field


def test_stays_agree_with_the_history(staff, house, engine):
    day_of_readings(engine, "b1", SPRING)

    stays = staff.get("/badges/b1/stays?date=2026-03-29").json
    history = staff.get("/badges/b1/location_history?date=2026-03-29").json

    assert [(s["room_id"], s["room_name"]) for s in stays] == [
        ("kitchen", "Kitchen"),
        ("lounge", "Lounge"),
        ("hall", "Hall"),
    ]
    assert sum(stay["readings"] for stay in stays) == len(history)
    expanded, index = [], 0
    for stay in stays:
        assert history[index][0] == stay["from"]
        index += stay["readings"]
        assert history[index - 1][0] == stay["to"]
        expanded += [stay["room_id"]] * stay["readings"]
        assert 0 < stay["confidence"] <= 1
    assert expanded == [room for _, room in history]
    assert stays[1]["from"] == "2026-03-29T08:00:00+01:00"


def test_readings_too_large_for_the_day_index_are_in_the_day(staff, house, engine):
    # A day is read from ix_readings_day_covered, which holds readings of
    # beacon documents up to 1,200 characters; the others are read apart
    # and put in their place in time.
    readings = day_of_readings(engine, "b1", SPRING, step_seconds=900)
    crowded = {
        **IN_HALL,
        **{f"imposter-{i:02d}-{'x' * 50}": -90 for i in range(20)},
    }
    assert len(orjson.dumps(crowded)) > 1200
    noon = datetime.datetime(2026, 3, 29, 11, 0, 1, tzinfo=datetime.UTC)
    add_readings(engine, "b1", [(noon, crowded), (noon, crowded)])

    history = staff.get("/badges/b1/location_history?date=2026-03-29").json
    stays = staff.get("/badges/b1/stays?date=2026-03-29").json

    assert len(history) == len(readings) + 2
    assert [time for time, _ in history] == sorted(time for time, _ in history)
    at_noon = [time for time, _ in history].index("2026-03-29T12:00:01+01:00")
    assert history[at_noon - 1][0] == "2026-03-29T12:00:00+01:00"
    assert history[at_noon + 1][0] == "2026-03-29T12:00:01+01:00"
    assert sum(stay["readings"] for stay in stays) == len(history)


def test_a_finished_day_is_cached(staff, house, engine):
    day_of_readings(engine, "b1", SPRING)
    url = "/badges/b1/location_history?date=2026-03-29&grain=600"
    first = staff.get(url).json
    with Session(engine) as session, session.begin():
        session.execute(delete(Reading).where(Reading.badge_id == "b1"))

    # Served from the cache: the readings are gone from the database.
    assert staff.get(url).json == first
    assert len(staff.get("/badges/b1/stays?date=2026-03-29").json) == 3
    # Another algorithm of the same day is not cached yet.
    assert staff.get(url + "&algorithm=raw").json == []
    days = staff.app.registry[LOCATING_DAYS]
    assert len(days) == 2

    # The metrics say what the caches hold.
    samples = scrape(staff)
    assert samples[("stethoscope_locating_cache_entries", (("cache", "days"),))] == 2
    assert samples[("stethoscope_locating_day_cache_bytes", ())] == days.nbytes > 0
    probabilities = samples[
        ("stethoscope_locating_cache_entries", (("cache", "probabilities"),))
    ]
    assert probabilities == len(staff.app.registry[LOCATING_FACTS].probabilities)


# Headers that differ from one response to the next whatever is sent.
PER_RESPONSE = {"content-length", "x-request-id", "date"}


def headers(response) -> dict:
    return {
        name.lower(): value
        for name, value in response.headerlist
        if name.lower() not in PER_RESPONSE
    }


def audited(engine) -> list[tuple]:
    with Session(engine) as session:
        return [
            (event.action, event.actor, event.target, event.details)
            for event in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.startswith("locating."))
                .order_by(AuditEvent.id)
            )
        ]


def test_a_cached_day_is_the_day_computed_afresh(
    make_app, create_user, staff, house, engine
):
    day_of_readings(engine, "b1", AUTUMN, step_seconds=97)
    day = "/badges/b1/location_history?date=2026-10-25"
    urls = [
        day,
        day + "&offset=300",
        day + "&return_value=room_name",
        day + "&grain=600&offset=20",
        day + "&algorithm=raw",
        "/badges/b1/stays?date=2026-10-25",
    ]
    bayes = [
        {"date": "2026-10-25", "priors": [["kitchen", 0]]},
        {"date": "2026-10-25", "priors": [["kitchen", 0], ["lounge", 0]]},
        {"date": "2026-10-25", "priors": [["hall", 3]], "grain": 3600},
    ]

    def answers(app):
        token = csrf(app)
        return [app.get(url) for url in urls] + [
            app.post_json("/badges/b1/location_history", body, headers=token)
            for body in bayes
        ]

    first = answers(staff)
    days = staff.app.registry[LOCATING_DAYS]
    kept = days.nbytes
    cached = answers(staff)
    # Another process: nothing cached, every answer made from the readings.
    afresh = make_app()
    login(afresh, *create_user("carer", "staff"))
    fresh = answers(afresh)

    # The same bytes, status and headers: a kept body is the answer.
    assert [r.body for r in cached] == [r.body for r in first]
    assert [r.body for r in cached] == [r.body for r in fresh]
    assert [headers(r) for r in cached] == [headers(r) for r in first]
    assert [headers(r) for r in cached] == [headers(r) for r in fresh]
    assert len(first[0].json) == 25 * 3600 // 97 + 1
    assert first[0].json[300:] == first[1].json
    assert {room for _, room in first[-2].json} == {"hall"}
    assert first[-3].json != first[-2].json  # priors are part of the key
    # smoothed, raw and the three priors' bayes days, each with the bodies
    # given of it; nothing new kept when asked again.
    assert len(days) == 5
    assert sorted(body for day in days.days() for body in day.bodies.values()) == (
        sorted(r.body for r in first)
    )
    assert days.nbytes == kept == sum(day.nbytes for day in days.days())


def test_a_kept_answer_is_sent_as_the_renderer_sends_json(staff, house, engine):
    day_of_readings(engine, "b1", SPRING, step_seconds=900)
    live(engine, "b1", IN_KITCHEN)
    rendered = staff.get("/badges/b1/location")  # a model, rendered
    for url in (
        "/badges/b1/location_history?date=2026-03-29",
        "/badges/b1/stays?date=2026-03-29",
    ):
        made, kept = staff.get(url), staff.get(url)
        assert made.content_type == kept.content_type == "application/json"
        assert headers(made) == headers(kept) == headers(rendered)
        assert kept.content_length == len(kept.body) == len(made.body)
        assert staff.head(url).headers["Content-Length"] == str(len(made.body))


def test_a_cached_answer_is_still_audited_and_checked(
    make_app, create_user, staff, house, engine
):
    day_of_readings(engine, "b1", SPRING, step_seconds=900)
    url = "/badges/b1/location_history?date=2026-03-29&grain=3600"
    first = staff.get(url)
    first_stays = staff.get("/badges/b1/stays?date=2026-03-29")
    with Session(engine) as session, session.begin():
        session.execute(delete(Reading).where(Reading.badge_id == "b1"))

    # Both answered from what was kept (the readings are gone) ...
    assert staff.get(url).body == first.body
    assert staff.get("/badges/b1/stays?date=2026-03-29").body == first_stays.body
    assert first_stays.json and first.json
    # ... and each viewing is in the audit log, the kept ones too.
    details = {"date": "2026-03-29", "algorithm": "smoothed"}
    history = ("locating.history", "nurse", "b1", {**details, "grain": 3600})
    stays = ("locating.stays", "nurse", "b1", details)
    assert audited(engine) == [history, stays, history, stays]
    # Permissions come first: a viewer is refused a kept day, unaudited.
    viewer = make_app()
    login(viewer, *create_user("viewer", "viewer"))
    viewer.get(url, status=403)
    viewer.get("/badges/b1/stays?date=2026-03-29", status=403)
    assert len(audited(engine)) == 4


@pytest.mark.parametrize("megabytes", ["0", "1"])
def test_kept_days_are_bounded_by_bytes(
    make_app, create_user, house, engine, megabytes
):
    app = make_app(**{"stethoscope.locating.day_cache_mb": megabytes})
    login(app, *create_user("nurse", "staff"))
    # Two days of a reading every 30 s: ~0.55 MB each with its body kept.
    for day in (SPRING, SPRING + datetime.timedelta(days=1)):
        day_of_readings(engine, "b1", day, step_seconds=30)
    urls = [
        "/badges/b1/location_history?date=2026-03-29",
        "/badges/b1/location_history?date=2026-03-30",
    ]
    first = [app.get(url).json for url in urls]
    days = app.app.registry[LOCATING_DAYS]
    with Session(engine) as session, session.begin():
        session.execute(delete(Reading).where(Reading.badge_id == "b1"))

    assert days.max_bytes == int(megabytes) << 20
    assert days.nbytes <= days.max_bytes
    if megabytes == "0":
        assert len(days) == 0
        assert [app.get(url).json for url in urls] == [[], []]
    else:
        # Only the newer fits beside nothing else: the older went out.
        assert len(days) == 1 and days.nbytes > days.max_bytes / 2
        assert [app.get(url).json for url in urls] == [[], first[1]]


def test_a_location_from_kept_probabilities_is_the_one_computed_afresh(
    make_app, create_user, house, engine
):
    apps = []
    for name in ("viewer", "other"):
        apps.append(make_app())
        login(apps[-1], *create_user(name, "viewer"))
    kept, afresh = apps
    live(engine, "b1", IN_LOUNGE, count=12)
    kept.get("/badges/b1/location")  # the window's readings predicted, kept
    live(engine, "b1", BETWEEN, count=3)

    def without_age(body):
        del body["reading"]["age_seconds"]
        return body

    assert without_age(kept.get("/badges/b1/location").json) == without_age(
        afresh.get("/badges/b1/location").json
    )
    assert (
        kept.get("/sites/rose/occupancy").json["rooms"]
        == (afresh.get("/sites/rose/occupancy").json["rooms"])
    )


def test_today_is_not_cached(staff, house, engine):
    live(engine, "b1", IN_KITCHEN)
    first = staff.get("/badges/b1/location_history").json
    assert len(first) == 6 and {room for _, room in first} == {"kitchen"}
    live(engine, "b1", IN_KITCHEN, count=1)

    assert len(staff.get("/badges/b1/location_history").json) == 7


def test_history_is_audited(staff, house, engine):
    day_of_readings(engine, "b1", SPRING, step_seconds=3600)

    staff.get("/badges/b1/location_history?date=2026-03-29&algorithm=raw")
    staff.get("/badges/b1/stays?date=2026-03-29")

    with Session(engine) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith("locating."))
            .order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.actor, e.target) for e in events] == [
            ("locating.history", "nurse", "b1"),
            ("locating.stays", "nurse", "b1"),
        ]
        assert events[0].details["date"] == "2026-03-29"
        assert events[0].details["algorithm"] == "raw"
        assert events[1].details["date"] == "2026-03-29"


def test_viewers_see_no_history(testapp, house, engine):
    live(engine, "b1", IN_KITCHEN)
    testapp.get("/badges/b1/location_history", status=403)
    testapp.get("/badges/b1/stays", status=403)
    testapp.post_json(
        "/badges/b1/location_history", {}, headers=csrf(testapp), status=403
    )


def test_history_of_a_badge_without_a_site(staff, house):
    staff.get("/badges/nobody/location_history", status=404)
    staff.get("/badges/nobody/stays", status=404)
