"""Training runs over JSON: lifecycle, overlap rules, live stats, coverage,
permissions and audit (SQLite and PostgreSQL)."""

import threading

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.labels.models import TrainingRun
from stethoscope.registry.models import Room, Site
from tests.conftest import login


@pytest.fixture
def house(engine):
    with Session(engine) as session, session.begin():
        session.add(Site(id="home", name="Home", timezone="Europe/London"))
        session.add(Room(id="kitchen", site_id="home", name="Kitchen"))
        session.add(Room(id="lounge", site_id="home", name="Lounge"))


def csrf(app) -> dict:
    token = app.get("/login", headers={"Accept": "text/html"}).forms["login"]
    return {"X-CSRF-Token": token["csrf_token"].value}


def post(app, url, body, status=200):
    return app.post_json(url, body, headers=csrf(app), status=status)


def reading(app, badge_id, n):
    # A different beacon each time: the same payload within the dedup
    # window would be a duplicate.
    app.post_json(
        "/rssi_readings",
        {"badge_id": badge_id, "pi_id": "pi-1", "beacons": {f"b-{n % 3}": -60 - n}},
        status=201,
    )


def stats(app, runs=None):
    query = f"?run_ids={','.join(str(r) for r in runs)}" if runs else ""
    body = app.get(f"/training_runs/bulk_stats{query}").json
    return {run["badge_id"]: run for run in body["runs"]}


def test_lifecycle(admin, house, engine):
    started = post(
        admin,
        "/training_runs/bulk_start",
        {"badge_ids": ["b1", "b2"], "room_id": "kitchen"},
        status=201,
    ).json["runs"]
    assert [run["status"] for run in started] == ["open", "open"]
    assert started[0]["started_at"] == started[1]["started_at"]
    assert started[0]["created_by"] == "boss"

    assert stats(admin)["b1"]["readings"] == 0
    for n in range(3):
        reading(admin, "b1", n)
    reading(admin, "b2", 7)
    live = stats(admin)
    assert live["b1"]["readings"] == 3
    assert live["b1"]["beacon_count"] == 3
    assert live["b1"]["seconds_since_last"] is not None
    assert live["b1"]["silent"] is False
    assert live["b2"]["readings"] == 1

    ended = post(admin, "/training_runs/bulk_end", {"badge_ids": ["b1", "b2"]}).json
    assert {run["status"] for run in ended["runs"]} == {"completed"}
    reading(admin, "b1", 9)  # after the end: not the run's
    final = stats(admin, [run["id"] for run in started])
    assert final["b1"]["readings"] == 3
    assert stats(admin) == {}  # no open runs left

    detail = admin.get(f"/training_runs/{started[0]['id']}").json
    assert detail["readings"] == 3 and detail["status"] == "completed"
    listed = admin.get("/training_runs?status=completed&room_id=kitchen").json
    assert listed["total"] == 2

    with Session(engine) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.startswith("run."))
        ).all()
    assert sorted(actions) == ["run.end", "run.end", "run.start", "run.start"]


def test_open_run_and_overlap_are_409(admin, house):
    post(
        admin,
        "/training_runs/bulk_start",
        {"badge_ids": ["b1"], "room_id": "kitchen"},
        201,
    )

    refused = post(
        admin,
        "/training_runs/bulk_start",
        {"badge_ids": ["b2", "b1"], "room_id": "lounge"},
        status=409,
    ).json
    assert refused["badge_id"] == "b1"
    assert "b1" in refused["message"]
    # All or nothing: b2 did not start either.
    assert set(stats(admin)) == {"b1"}

    post(admin, "/training_runs/bulk_end", {"badge_ids": ["b9"]}, status=409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"badge_ids": [], "room_id": "kitchen"}, "badge_ids"),
        ({"badge_ids": ["a b"], "room_id": "kitchen"}, "badge_ids.0"),
        ({"badge_ids": ["b1"]}, "room_id"),
        ({"badge_ids": ["b1"], "room_id": "attic"}, "room_id"),
        ({"badge_ids": ["b1"], "room_id": "kitchen", "extra": 1}, "extra"),
    ],
)
def test_bad_bodies_name_the_field(admin, house, body, field):
    response = post(admin, "/training_runs/bulk_start", body, status=400)

    assert field in [error["field"] for error in response.json["errors"]]


def test_unknown_run_is_404(admin, house):
    admin.get("/training_runs/999", status=404)
    admin.delete("/training_runs/999", headers=csrf(admin), status=404)
    post(admin, "/training_runs/999/cancel", {}, status=404)


def test_relabel_cancel_delete_and_coverage(admin, house, engine):
    (run,) = post(
        admin,
        "/training_runs/bulk_start",
        {"badge_ids": ["b1"], "room_id": "kitchen"},
        201,
    ).json["runs"]
    for n in range(4):
        reading(admin, "b1", n)
    post(admin, "/training_runs/bulk_end", {"run_ids": [run["id"]]})

    def coverage():
        rooms = admin.get("/training_runs/coverage").json["rooms"]
        return {room["room_id"]: (room["runs"], room["readings"]) for room in rooms}

    assert coverage() == {"kitchen": (1, 4), "lounge": (0, 0)}
    relabelled = post(
        admin, f"/training_runs/{run['id']}/relabel", {"room_id": "lounge"}
    )
    assert relabelled.json["room_id"] == "lounge"
    assert coverage() == {"kitchen": (0, 0), "lounge": (1, 4)}

    post(admin, f"/training_runs/{run['id']}/cancel", {})
    assert coverage() == {"kitchen": (0, 0), "lounge": (0, 0)}
    post(admin, f"/training_runs/{run['id']}/cancel", {}, status=409)

    deleted = admin.delete(f"/training_runs/{run['id']}", headers=csrf(admin)).json
    assert deleted["deleted"]["id"] == run["id"]
    admin.get(f"/training_runs/{run['id']}", status=404)
    # The readings stay.
    assert admin.get("/rssi_readings?badge_id=b1").json["readings"]

    with Session(engine) as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.startswith("run."))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == [
        "run.start",
        "run.end",
        "run.relabel",
        "run.cancel",
        "run.delete",
    ]


def test_unsafe_calls_need_the_csrf_header(admin, house):
    admin.post_json(
        "/training_runs/bulk_start",
        {"badge_ids": ["b1"], "room_id": "kitchen"},
        status=403,
    )


@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_only_admins(make_app, create_user, house, role):
    app = make_app()
    login(app, *create_user(role, role))

    app.get("/training_runs", status=403)
    app.get("/training_runs/bulk_stats", status=403)
    app.get("/training_runs/coverage", status=403)
    post(
        app,
        "/training_runs/bulk_start",
        {"badge_ids": ["b1"], "room_id": "kitchen"},
        403,
    )


def test_anonymous_is_401(anonymous, house):
    anonymous.get("/training_runs", status=401)
    anonymous.get("/training_runs/bulk_stats", status=401)


@pytest.fixture
def postgres_only(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's")


def test_concurrent_starts_of_one_badge_one_wins(
    postgres_only, make_app, db_url, house
):
    """Two transactions start a run for the same badge at once: the lock
    makes the second see the first's run and refuse."""
    from stethoscope.errors import Conflict
    from stethoscope.labels.services import LabelService

    engine = create_engine(db_url)
    barrier = threading.Barrier(2)
    outcomes = []

    def start():
        with Session(engine) as session:
            service = LabelService(session)
            barrier.wait()
            try:
                service.start(["b1"], "kitchen", "boss")
                session.commit()
                outcomes.append("started")
            except Conflict:
                session.rollback()
                outcomes.append("conflict")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with Session(engine) as session:
        runs = session.scalars(select(TrainingRun)).all()
    engine.dispose()

    assert sorted(outcomes) == ["conflict", "started"]
    assert len(runs) == 1
