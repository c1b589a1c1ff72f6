"""Alerts: each kind opens when its condition holds and clears when it goes;
per-room stay limits; the webhook (a real local HTTP server); concurrent
evaluation; GET /alerts; stethoscope-alerts. SQLite and PostgreSQL, a clock
injected into the evaluator."""

import datetime
import hashlib
import logging
import threading

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stethoscope.alerts.conditions import AlertSettings
from stethoscope.alerts.models import Alert, AlertStay
from stethoscope.alerts.script import main as alerts_script
from stethoscope.alerts.services import AlertEvaluator
from stethoscope.ingest.models import Reading
from stethoscope.learning.artifacts import ModelStore
from stethoscope.learning.models import ModelVersion
from stethoscope.learning.services import ModelService
from stethoscope.notify import WebhookNotifier
from stethoscope.registry.models import Badge, Beacon, Gateway, Room
from stethoscope.singletons import ALERTS_EVALUATOR, DATABASE
from tests.conftest import login
from tests.support.models import add_site, register_model
from tests.support.webhook import Hook

ROOMS = ["kitchen", "lounge", "hall"]
IN_KITCHEN = {"b-kitchen": -52, "b-lounge": -82, "b-hall": -81}
IN_LOUNGE = {"b-kitchen": -82, "b-lounge": -52, "b-hall": -81}
# Noon in UTC: the day hours (7 to 22) of a UTC site.
NOON = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)


class Clock:
    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta) -> datetime.datetime:
        self.now += datetime.timedelta(**delta)
        return self.now


@pytest.fixture
def app_settings(app_settings):
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def model_dir(app_settings):
    return app_settings["stethoscope.model_dir"]


@pytest.fixture
def registry(make_app):
    return make_app().app.registry


def evaluator_of(registry, clock, **settings) -> AlertEvaluator:
    """An evaluator on the app's database, models and locating, at ``clock``."""
    served = registry[ALERTS_EVALUATOR]
    return AlertEvaluator(
        served.database,
        AlertSettings.defaults(**settings),
        active_models=served.active_models,
        locating=served.locating,
        notifier=served.notifier,
        clock=clock,
    )


def alerts(engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def change(engine, model, key, **values) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(model).where(model.id == key).values(**values))


def add(engine, *rows) -> None:
    with Session(engine) as session, session.begin():
        session.add_all(rows)


def add_readings(engine, badge_id, readings, gateway_id="pi-1") -> None:
    add(
        engine,
        *(
            Reading(
                badge_id=badge_id,
                gateway_id=gateway_id,
                received_at=observed_at,
                observed_at=observed_at,
                beacons=beacons,
                badge_strength=None,
                fingerprint=hashlib.md5(repr(beacons).encode()).hexdigest(),
            )
            for observed_at, beacons in readings
        ),
    )


def activate(engine, model_dir, version_id) -> None:
    with Session(engine) as session, session.begin():
        ModelService(session, ModelStore(model_dir)).activate(version_id, actor="test")


@pytest.fixture
def site(engine):
    add_site(engine, "rose", ROOMS)
    add(engine, Gateway(id="pi-1", site_id="rose", name="Hall Pi"))
    return "rose"


def only(engine) -> Alert:
    found = alerts(engine)
    assert len(found) == 1, found
    return found[0]


# ---- each kind ---------------------------------------------------------------


def test_a_silent_gateway_opens_and_clears(registry, engine, site):
    clock = Clock(NOON)
    evaluator = evaluator_of(registry, clock, gateway_silent_minutes=10)
    change(engine, Gateway, "pi-1", last_seen=NOON - 5 * MINUTE)

    assert evaluator.evaluate(site) == []
    change(engine, Gateway, "pi-1", last_seen=NOON - 11 * MINUTE)
    opened = evaluator.evaluate(site)

    alert = only(engine)
    assert [a.id for a in opened] == [alert.id]
    assert (alert.kind, alert.subject, alert.site_id) == (
        "gateway_silent",
        "pi-1",
        site,
    )
    assert alert.opened_at == NOON and alert.cleared_at is None
    assert alert.details["message"] == "Gateway Hall Pi silent for 11 min"
    assert alert.details["last_seen"] == (NOON - 11 * MINUTE).isoformat()

    clock.advance(minutes=1)
    assert evaluator.evaluate(site) == []  # still silent: the same alert
    assert only(engine).last_checked_at == NOON + MINUTE
    assert only(engine).details["message"] == "Gateway Hall Pi silent for 12 min"

    change(engine, Gateway, "pi-1", last_seen=clock.now)
    cleared_at = clock.advance(minutes=1)
    evaluator.evaluate(site)

    alert = only(engine)
    assert alert.cleared_at == cleared_at and alert.opened_at == NOON

    # Silent again: a new alert, the old one stays cleared in the history.
    clock.advance(minutes=30)
    evaluator.evaluate(site)
    first, second = alerts(engine)
    assert first.cleared_at == cleared_at
    assert second.cleared_at is None and second.opened_at == clock.now


def test_a_silent_beacon_opens_and_clears(registry, engine, site):
    clock = Clock(NOON)
    evaluator = evaluator_of(registry, clock, beacon_silent_minutes=60)
    add(
        engine,
        Beacon(id="b-kitchen", room_id="kitchen", last_heard=NOON - 61 * MINUTE),
        Beacon(id="b-lounge", room_id="lounge", last_heard=NOON - MINUTE),
        # In no room: not the site's.
        Beacon(id="b-loose", last_heard=NOON - 600 * MINUTE),
    )

    evaluator.evaluate(site)

    alert = only(engine)
    assert (alert.kind, alert.subject) == ("beacon_silent", "b-kitchen")
    assert alert.details["room_id"] == "kitchen"
    change(engine, Beacon, "b-kitchen", last_heard=NOON)
    evaluator.evaluate(site)
    assert only(engine).cleared_at == NOON


def test_a_silent_gateway_opens_in_the_day_only(registry, engine, site):
    clock = Clock(NOON)
    evaluator = evaluator_of(registry, clock, badge_silent_minutes=30)
    add(
        engine,
        Badge(id="b1", site_id=site, last_seen=NOON - 31 * MINUTE),
        Badge(id="b-off", site_id=site, last_seen=NOON - 99 * MINUTE, active=False),
        Badge(id="b-new", site_id=site),  # never heard
    )

    evaluator.evaluate(site)

    alert = only(engine)
    assert (alert.kind, alert.subject) == ("badge_silent", "b1")
    change(engine, Badge, "b1", last_seen=clock.advance(minutes=1))
    evaluator.evaluate(site)
    assert only(engine).cleared_at == clock.now


def test_a_badge_out_at_night(registry, engine):
    # Tokyo is UTC+9: 14:30 UTC is 23:30 there, night from 22:00.
    add_site(engine, "sakura", ["room"], timezone="Asia/Tokyo")
    evening = datetime.datetime(2026, 12, 7, 14, 30, tzinfo=datetime.UTC)
    clock = Clock(evening)
    evaluator = evaluator_of(registry, clock, night_silent_minutes=15)
    add(
        engine,
        # Heard at 21:00 local, then not.
        Badge(id="out", site_id="sakura", last_seen=evening - 150 * MINUTE),
        # Heard a minute ago: in.
        Badge(id="in", site_id="sakura", last_seen=evening - MINUTE),
        # Last heard the day before: not "heard earlier that day".
        Badge(id="lost", site_id="sakura", last_seen=evening - 24 * 60 * MINUTE),
    )

    evaluator.evaluate("sakura")

    alert = only(engine)
    assert (alert.kind, alert.subject) == ("out_at_night", "out")
    # 02:00 local, the same night: still out, the same alert.
    clock.advance(hours=2, minutes=30)
    change(engine, Badge, "in", last_seen=clock.now - MINUTE)
    evaluator.evaluate("sakura")
    assert only(engine).cleared_at is None
    change(engine, Badge, "out", last_seen=clock.now)
    evaluator.evaluate("sakura")
    assert only(engine).cleared_at == clock.now


def test_imposter_beacons_in_many_readings(registry, engine, site, model_dir):
    activate(engine, model_dir, register_model(engine, model_dir, site, ROOMS))
    clock = Clock(NOON)
    evaluator = evaluator_of(
        registry, clock, imposter_window_minutes=30, imposter_min_readings=3
    )
    with_new = {**IN_KITCHEN, "b-new": -60}
    add_readings(
        engine,
        "b1",
        [(NOON - i * MINUTE, with_new) for i in range(3)]
        # Another site's gateway hears b-far: not rose's readings.
        + [(NOON - i * MINUTE, {"b-kitchen": -70, "b-odd": -70}) for i in range(2)],
    )
    add_readings(
        engine, "b9", [(NOON - i * MINUTE, {"b-far": -60}) for i in range(5)], "pi-x"
    )

    evaluator.evaluate(site)

    alert = only(engine)
    assert (alert.kind, alert.subject) == ("imposter_beacon", "b-new")
    assert alert.details["readings"] == 3
    clock.advance(minutes=29)  # the oldest of the three leaves the window
    evaluator.evaluate(site)
    assert only(engine).cleared_at == clock.now


def test_a_model_older_than_a_beacon(registry, engine, site, model_dir):
    old = register_model(engine, model_dir, site, ROOMS)
    activate(engine, model_dir, old)
    trained = NOON - datetime.timedelta(days=1)
    change(engine, ModelVersion, old, created_at=trained)
    add(engine, Beacon(id="b-kitchen", room_id="kitchen", first_heard=trained))
    evaluator = evaluator_of(registry, Clock(NOON))

    evaluator.evaluate(site)
    assert alerts(engine) == []
    add(engine, Beacon(id="b-new", room_id="hall", first_heard=NOON - 60 * MINUTE))
    evaluator.evaluate(site)

    alert = only(engine)
    assert (alert.kind, alert.subject) == ("model_outdated", site)
    assert alert.details["beacons"] == ["b-new"]
    assert alert.details["model_version_id"] == old
    # Retrained since: the new model knows it.
    new = register_model(engine, model_dir, site, ROOMS)
    change(engine, ModelVersion, new, created_at=NOON - MINUTE)
    activate(engine, model_dir, new)
    evaluator.evaluate(site)
    assert only(engine).cleared_at == NOON


def test_a_beacon_the_model_learnt_is_no_news_however_late_heard_live(
    registry, engine, site, model_dir
):
    # Trained on imported readings: its beacons are heard live only after.
    version = register_model(engine, model_dir, site, ROOMS)
    activate(engine, model_dir, version)
    change(engine, ModelVersion, version, created_at=NOON - 60 * MINUTE)
    add(
        engine,
        *(
            Beacon(id=f"b-{room}", room_id=room, first_heard=NOON - MINUTE)
            for room in ROOMS
        ),
    )
    evaluator = evaluator_of(registry, Clock(NOON))

    evaluator.evaluate(site)
    assert alerts(engine) == []
    # One it never heard of, installed since, is news.
    add(engine, Beacon(id="b-new", room_id="hall", first_heard=NOON - MINUTE))
    evaluator.evaluate(site)
    assert only(engine).details["beacons"] == ["b-new"]


# ---- long stays (locating's occupancy) ---------------------------------------


@pytest.fixture
def located(engine, site, model_dir):
    """rose with an active model, badge b1 (Mrs B.), beacons heard; kitchen
    limited to 30 minutes, the lounge not at all. Returns now."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    add(
        engine,
        Badge(id="b1", site_id=site, wearer="Mrs B.", last_seen=now),
        *(Beacon(id=f"b-{room}", room_id=room, last_heard=now) for room in ROOMS),
    )
    change(engine, Room, "kitchen", max_stay_minutes=30)
    activate(engine, model_dir, register_model(engine, model_dir, site, ROOMS))
    return now


def every(start, end, beacons, step=30):
    moment, out = start, []
    while moment <= end:
        out.append((moment, beacons))
        moment += datetime.timedelta(seconds=step)
    return out


def test_a_long_stay_is_watched_across_evaluations(registry, engine, located):
    now = located
    clock = Clock(now)
    # Nobody updates b1's last_seen here: only the stays are looked at.
    evaluator = evaluator_of(
        registry, clock, badge_silent_minutes=1440, night_silent_minutes=1440
    )
    add_readings(
        engine, "b1", every(now - 100 * datetime.timedelta(seconds=1), now, IN_KITCHEN)
    )

    evaluator.evaluate("rose")
    with Session(engine) as session:
        stay = session.get(AlertStay, "b1")
    assert stay.room_id == "kitchen"
    began = stay.since
    assert now - 2 * MINUTE <= began <= now

    # Still in the kitchen a minute at a time, until past its limit.
    for _ in range(31):
        step_from = clock.now
        clock.advance(minutes=1)
        add_readings(
            engine,
            "b1",
            every(step_from + datetime.timedelta(seconds=30), clock.now, IN_KITCHEN),
        )
        evaluator.evaluate("rose")
        if alerts(engine):
            break

    alert = only(engine)
    assert (alert.kind, alert.subject) == ("long_stay", "b1")
    assert alert.details["room_id"] == "kitchen"
    assert alert.details["since"] == began.isoformat()
    assert alert.details["limit_minutes"] == 30
    assert clock.now - began > 30 * MINUTE

    # To the lounge, which has no limit: cleared, and the stay begins again.
    step_from = clock.now
    clock.advance(minutes=2)
    add_readings(
        engine,
        "b1",
        every(step_from + datetime.timedelta(seconds=30), clock.now, IN_LOUNGE),
    )
    evaluator.evaluate("rose")
    assert only(engine).cleared_at == clock.now
    with Session(engine) as session:
        assert session.get(AlertStay, "b1").room_id == "lounge"


def test_the_limit_is_per_room(make_app, engine, located):
    now = located
    # A window long enough to see the whole hour: one evaluation suffices.
    registry = make_app(**{"stethoscope.locating.window_seconds": "3600"}).app.registry
    evaluator = evaluator_of(registry, Clock(now))
    hour_ago = now - 60 * MINUTE
    add_readings(engine, "b1", every(hour_ago, now, IN_LOUNGE))

    evaluator.evaluate("rose")
    assert alerts(engine) == []  # the lounge has no limit

    change(engine, Room, "lounge", max_stay_minutes=45)
    evaluator.evaluate("rose")
    alert = only(engine)
    assert (alert.kind, alert.subject) == ("long_stay", "b1")
    assert alert.details["limit_minutes"] == 45


# ---- the webhook -------------------------------------------------------------


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


def test_the_webhook_is_told_once_per_opening(make_app, engine, site, hook):
    registry = make_app(**{"stethoscope.notify.webhook_url": hook.url}).app.registry
    clock = Clock(NOON)
    evaluator = evaluator_of(registry, clock)
    add(engine, Gateway(id="pi-2", site_id=site))
    change(engine, Gateway, "pi-1", last_seen=NOON - 20 * MINUTE)

    evaluator.evaluate(site)
    assert hook.events[0].wait(10)
    clock.advance(minutes=1)
    evaluator.evaluate(site)  # still open: nothing to tell
    change(engine, Gateway, "pi-2", last_seen=NOON - 20 * MINUTE)
    evaluator.evaluate(site)
    assert hook.events[1].wait(10)
    evaluator.notifier.wait(10)

    assert len(hook.bodies) == 2
    assert [set(body) for body in hook.bodies] == [{"text"}, {"text"}]
    assert hook.bodies[0]["text"].startswith("Gateway Hall Pi silent for 20 min.")
    assert "power and network" in hook.bodies[0]["text"]
    assert hook.bodies[1]["text"].startswith("Gateway pi-2 silent for 21 min.")


def test_a_failing_webhook_is_logged_not_raised(registry, engine, site, caplog):
    clock = Clock(NOON)
    evaluator = evaluator_of(registry, clock)
    # A port nobody listens on: take one, then close it.
    hook = Hook()
    url = hook.url
    hook.close()
    evaluator.notifier = WebhookNotifier(url)
    change(engine, Gateway, "pi-1", last_seen=NOON - 20 * MINUTE)

    with caplog.at_level(logging.WARNING, logger="stethoscope.alerts.services"):
        assert len(evaluator.evaluate(site)) == 1
        evaluator.notifier.wait(10)

    assert "alert webhook failed" in caplog.text
    assert only(engine).cleared_at is None


# ---- concurrency and timing --------------------------------------------------


def test_concurrent_evaluations_open_one_alert(make_app, engine, site):
    # Two processes' evaluators, both seeing the silent gateway before
    # either applies what it saw.
    clock = Clock(NOON)
    first, second = (evaluator_of(make_app().app.registry, clock) for _ in range(2))
    change(engine, Gateway, "pi-1", last_seen=NOON - 20 * MINUTE)
    seen = [first.observe(site), second.observe(site)]
    barrier = threading.Barrier(2)
    opened, errors = [], []

    def apply(evaluator, observation):
        barrier.wait()
        try:
            opened.extend(evaluator.apply(observation))
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=apply, args=(evaluator, observation))
        for evaluator, observation in zip((first, second), seen, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(opened) == 1
    assert only(engine).cleared_at is None


def test_an_older_observation_applied_late_changes_nothing(registry, engine, site):
    clock = Clock(NOON)
    evaluator = evaluator_of(registry, clock)
    change(engine, Gateway, "pi-1", last_seen=NOON - 20 * MINUTE)
    stale = evaluator.observe(site)
    evaluator.evaluate(site)
    change(engine, Gateway, "pi-1", last_seen=NOON)
    clock.advance(minutes=1)
    evaluator.evaluate(site)  # cleared

    assert evaluator.apply(stale) == []
    assert only(engine).cleared_at == clock.now


def test_evaluated_at_most_every_interval(registry, engine, site):
    clock = Clock(NOON)
    ticks = [0.0]
    served = registry[ALERTS_EVALUATOR]
    evaluator = AlertEvaluator(
        served.database,
        AlertSettings.defaults(interval_seconds=30),
        clock=clock,
        monotonic=lambda: ticks[0],
    )
    change(engine, Gateway, "pi-1", last_seen=NOON - 20 * MINUTE)

    evaluator.maybe_evaluate()
    assert len(alerts(engine)) == 1
    change(engine, Gateway, "pi-1", last_seen=NOON)
    clock.advance(minutes=1)
    ticks[0] = 29.0
    evaluator.maybe_evaluate()
    assert only(engine).cleared_at is None  # not due yet
    ticks[0] = 30.0
    evaluator.maybe_evaluate()
    assert only(engine).cleared_at == clock.now


# ---- GET /alerts ---------------------------------------------------------------


@pytest.fixture
def silent_gateway(engine, site):
    """pi-1 silent for an hour; b1 (Mrs B.) heard just now."""
    now = datetime.datetime.now(datetime.UTC)
    add(engine, Badge(id="b1", site_id=site, wearer="Mrs B.", last_seen=now))
    change(engine, Gateway, "pi-1", last_seen=now - 60 * MINUTE)
    return now


def test_the_api_lists_open_alerts_with_advice(testapp, silent_gateway, engine):
    body = testapp.get("/alerts", params={"site": "rose"}).json

    (alert,) = body["alerts"]
    assert alert["kind"] == "gateway_silent" and alert["subject"] == "pi-1"
    assert alert["message"] == "Gateway Hall Pi silent for 60 min"
    assert "power and network" in alert["advice"]
    assert alert["cleared_at"] is None and alert["wearer"] is None
    assert "message" not in alert["details"]
    assert testapp.get("/alerts", params={"state": "cleared"}).json == {"alerts": []}
    assert len(testapp.get("/alerts", params={"state": "all"}).json["alerts"]) == 1


def test_wearers_only_for_staff(make_app, create_user, engine, site):
    add(engine, Badge(id="b1", site_id=site, wearer="Mrs B."))
    # Opened at an earlier evaluation (the one a request runs clears it).
    with Session(engine) as session, session.begin():
        session.add(
            Alert(
                site_id=site,
                kind="badge_silent",
                subject="b1",
                opened_at=NOON,
                last_checked_at=NOON,
                details={"message": "Badge b1 not heard for 40 min"},
            )
        )
    viewer, staff = make_app(), make_app()
    login(viewer, *create_user("viewer", "viewer"))
    login(staff, *create_user("nurse", "staff"))

    def wearers(app):
        alerts = app.get("/alerts", params={"state": "all"}).json["alerts"]
        return {a["subject"]: a["wearer"] for a in alerts if a["subject"] == "b1"}

    assert wearers(viewer) == {"b1": None}
    assert wearers(staff) == {"b1": "Mrs B."}


def test_refusals(testapp, site):
    assert testapp.get("/alerts?site=nowhere", status=404).json["error"] == "not_found"
    response = testapp.get("/alerts?state=maybe", status=400)
    assert response.json["errors"][0]["field"] == "state"
    response = testapp.get("/alerts?sight=rose", status=400)
    assert response.json["errors"][0]["field"] == "sight"


def test_open_alerts_for_pages(registry, silent_gateway):
    from stethoscope.alerts.services import AlertService

    service = AlertService(registry[DATABASE], registry[ALERTS_EVALUATOR])

    (alert,) = service.open_alerts("rose")
    assert alert.kind == "gateway_silent" and alert.advice


def test_the_alerts_page_reads_open_and_cleared_at_once(registry, engine, site):
    """The open alerts and the newest cleared ones come from one evaluation
    and one read, so an alert the evaluation clears is listed once, as
    cleared."""
    from stethoscope.alerts.services import AlertService

    clock = Clock(NOON)
    gateways = ["pi-1", "pi-2", "pi-3", "pi-4"]
    add(engine, *(Gateway(id=g, site_id=site, name=g) for g in gateways[1:]))
    for gateway in gateways:
        change(engine, Gateway, gateway, last_seen=NOON - 20 * MINUTE)
    evaluator = evaluator_of(
        registry, clock, gateway_silent_minutes=10, interval_seconds=0
    )
    evaluator.evaluate(site)
    # pi-1 then pi-2 heard again and cleared; pi-3 heard now, cleared by
    # the evaluation the page's read runs.
    for gateway in gateways[:2]:
        change(engine, Gateway, gateway, last_seen=clock.advance(minutes=1))
        evaluator.evaluate(site)
    change(engine, Gateway, "pi-3", last_seen=clock.advance(minutes=1))
    ids = {a.subject: a.id for a in alerts(engine)}

    service = AlertService(registry[DATABASE], evaluator)
    open_alerts, cleared = service.open_and_cleared(cleared_limit=2)

    assert [a.id for a in open_alerts] == [ids["pi-4"]]
    assert [a.id for a in cleared] == [ids["pi-3"], ids["pi-2"]]
    assert all(a.cleared_at is not None for a in cleared)


# ---- stethoscope-alerts ----------------------------------------------------------


def test_the_console_check(ini, engine, site, capsys):
    change(
        engine,
        Gateway,
        "pi-1",
        last_seen=datetime.datetime.now(datetime.UTC) - 60 * MINUTE,
    )

    assert alerts_script([ini, "check"]) == 0
    out = capsys.readouterr().out
    assert "rose: opened gateway_silent pi-1" in out
    assert only(engine).kind == "gateway_silent"
    assert alerts_script([ini, "check", "--site", "rose"]) == 0
    assert "rose: 0 opened" in capsys.readouterr().out
    assert alerts_script([ini, "check", "--site", "nowhere"]) == 2
    assert "no site nowhere" in capsys.readouterr().err
