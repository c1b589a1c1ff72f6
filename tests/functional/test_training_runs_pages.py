"""The training-run pages: start, end, history changes, coverage, time zones."""

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.labels.models import TrainingRun
from stethoscope.registry.models import Badge, Room, Site
from tests.conftest import login

HTML = {"Accept": "text/html"}


@pytest.fixture
def house(engine):
    now = datetime.datetime.now(datetime.UTC)
    with Session(engine) as session, session.begin():
        session.add(Site(id="nz", name="Kowhai House", timezone="Pacific/Auckland"))
        session.add(Room(id="kitchen", site_id="nz", name="Kitchen"))
        session.add(Room(id="lounge", site_id="nz", name="Lounge"))
        session.add(Badge(id="b-recent", wearer="Mrs B.", last_seen=now))
        session.add(Badge(id="b-old", last_seen=now - datetime.timedelta(minutes=30)))


def runs(engine):
    with Session(engine) as session:
        return session.scalars(select(TrainingRun).order_by(TrainingRun.id)).all()


def test_start_and_end_from_the_page(admin, house, engine):
    page = admin.get("/admin/training", headers=HTML)
    form = page.forms["start-run"]
    assert "b-recent" in page.text and "b-old" not in page.text
    form["room_id"] = "kitchen"
    form.get("badge_ids", index=0).checked = True
    form["other_badges"] = "b-typed, b-other"
    landed = form.submit(headers=HTML, status=303).follow(headers=HTML)

    assert "Started 3 runs in Kitchen" in landed.text
    assert [run.badge_id for run in runs(engine)] == ["b-recent", "b-typed", "b-other"]
    table = landed.html.find(id="open-runs")
    assert len(table.find_all("tr", attrs={"data-run-id": True})) == 3

    first = runs(engine)[0]
    end_one = [
        f
        for f in landed.forms.values()
        if f.fields.get("run_id") and f["run_id"].value == str(first.id)
    ][0]
    after = end_one.submit(headers=HTML, status=303).follow(headers=HTML)
    assert f"Ended run {first.id}" in after.text
    assert "no readings" in after.text  # flagged, not refused

    after.forms["end-all"].submit(headers=HTML, status=303)
    assert {run.status for run in runs(engine)} == {"completed"}


def test_a_refused_start_says_why(admin, house, engine):
    form = admin.get("/admin/training", headers=HTML).forms["start-run"]
    form["room_id"] = "kitchen"
    form["other_badges"] = "b1"
    form.submit(headers=HTML, status=303)

    form = admin.get("/admin/training", headers=HTML).forms["start-run"]
    form["room_id"] = "lounge"
    form["other_badges"] = "b2 b1"
    refused = form.submit(headers=HTML, status=409)

    assert "badge b1 already has an open run" in refused.text
    assert [run.badge_id for run in runs(engine)] == ["b1"]

    form = refused.forms["start-run"]
    form["room_id"] = ""
    form["other_badges"] = "b3"
    assert "no room" in form.submit(headers=HTML, status=400).text


def test_times_are_in_the_sites_zone(admin, house, engine):
    start = datetime.datetime(2026, 1, 15, 0, 0, tzinfo=datetime.UTC)
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id="b1",
                room_id="kitchen",
                started_at=start,
                ended_at=start + datetime.timedelta(hours=1),
                created_by="boss",
            )
        )
        session.add(
            TrainingRun(
                badge_id="b2", room_id="kitchen", started_at=start, created_by="boss"
            )
        )

    history = admin.get("/admin/training/history", headers=HTML)
    live = admin.get("/admin/training", headers=HTML)

    # 00:00 UTC in January is 13:00 New Zealand daylight time.
    assert "2026-01-15 13:00:00 NZDT" in history.text
    assert "2026-01-15 14:00:00 NZDT" in history.text
    assert "2026-01-15 13:00:00 NZDT" in live.text
    assert 'title="Pacific/Auckland"' in live.text


def test_history_relabel_cancel_delete_and_coverage(admin, house, engine):
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id="b1",
                room_id="kitchen",
                started_at=start,
                ended_at=start + datetime.timedelta(hours=1),
                created_by="boss",
            )
        )
    (run,) = runs(engine)

    def change(**fields):
        page = admin.get("/admin/training/history", headers=HTML)
        form = [
            f
            for f in page.forms.values()
            if f.action.endswith(f"/runs/{run.id}")
            and f["change"].value == fields["change"]
        ][0]
        for name, value in fields.items():
            if name != "change":
                form[name] = value
        return form.submit(headers=HTML, status=303).follow(headers=HTML)

    assert "now labelled Lounge" in change(change="relabel", room_id="lounge").text
    coverage = admin.get("/admin/training/coverage", headers=HTML)
    lounge = coverage.html.find("tr", attrs={"data-room-id": "lounge"})
    assert [td.text for td in lounge.find_all("td")][2] == "1"
    assert "grouped cross-validation" in lounge.text

    assert "Cancelled run" in change(change="cancel").text
    coverage = admin.get("/admin/training/coverage", headers=HTML)
    lounge = coverage.html.find("tr", attrs={"data-room-id": "lounge"})
    assert [td.text for td in lounge.find_all("td")][2] == "0"

    assert "Deleted run" in change(change="delete").text
    assert runs(engine) == []


@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_pages_are_for_admins(make_app, create_user, house, role):
    app = make_app()
    login(app, *create_user(role, role))
    for path in (
        "/admin/training",
        "/admin/training/history",
        "/admin/training/coverage",
    ):
        app.get(path, headers=HTML, status=403)


def test_anonymous_is_sent_to_log_in(anonymous, house):
    response = anonymous.get("/admin/training", headers=HTML, status=303)
    assert "/login?next=" in response.location
