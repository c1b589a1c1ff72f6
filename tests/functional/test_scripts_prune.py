"""stethoscope-prune: old readings go, training data and newer ones stay,
and a pruned day's stays answer as before, on SQLite and PostgreSQL."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.db import utcnow
from stethoscope.ingest.models import Reading
from stethoscope.labels.models import TrainingRun
from stethoscope.learning.artifacts import ModelStore
from stethoscope.learning.services import ModelService
from stethoscope.registry.models import Badge, Beacon, Gateway
from stethoscope.retention.models import ArchivedStay
from stethoscope.scripts import prune
from tests.conftest import login
from tests.support.models import add_site, register_model

NOW = utcnow()
DAY = datetime.timedelta(days=1)


def ago(days: float) -> datetime.datetime:
    return NOW - days * DAY


def add_readings(engine, *readings: tuple[str, datetime.datetime]) -> list[int]:
    """Store readings (badge, observed_at); their ids, in order."""
    with Session(engine) as session, session.begin():
        rows = [
            Reading(
                badge_id=badge,
                gateway_id="pi-1",
                received_at=observed,
                observed_at=observed,
                badge_strength=None,
                beacons={"b1": -60},
                fingerprint="f" * 32,
            )
            for badge, observed in readings
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def add_run(engine, badge, started, ended=None, *, cancelled=None) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id=badge,
                room_id="lounge",
                started_at=started,
                ended_at=ended,
                cancelled_at=cancelled,
                created_by="test",
            )
        )


def stored(db) -> set[int]:
    db.rollback()
    return set(db.scalars(select(Reading.id)))


def prune_events(db) -> list[tuple]:
    db.rollback()
    return [
        (event.actor, event.actor_type, event.details)
        for event in db.scalars(
            select(AuditEvent).where(AuditEvent.action == "readings.prune")
        )
    ]


@pytest.fixture
def house(engine):
    """Readings of badges B1 and B2 around training runs; their ids by name."""
    add_site(engine, "rose", ["lounge"])
    # B1 was in a completed run 40 to 35 days ago; B2 is in a run opened 50
    # days ago and still open; B1's run 60 to 55 days ago was cancelled.
    add_run(engine, "B1", ago(40), ago(35))
    add_run(engine, "B2", ago(50))
    add_run(engine, "B1", ago(60), ago(55), cancelled=ago(54))
    names = [
        "b1_old",  # 45 days, outside B1's runs: goes
        "b1_in_run",  # 38 days, inside B1's run: stays
        "b1_run_end",  # at the run's very end: stays
        "b1_in_cancelled",  # inside the cancelled run: goes
        "b2_old_before_run",  # 52 days, before B2's run opened: goes
        "b2_in_open_run",  # 45 days, inside B2's open run: stays
        "b3_old",  # 31 days, no run at all: goes
        "b1_new",  # 10 days: newer than the cut-off, stays
        "b3_new",  # an hour ago: stays
    ]
    ids = add_readings(
        engine,
        ("B1", ago(45)),
        ("B1", ago(38)),
        ("B1", ago(35)),
        ("B1", ago(57)),
        ("B2", ago(52)),
        ("B2", ago(45)),
        ("B3", ago(31)),
        ("B1", ago(10)),
        ("B3", ago(1 / 24)),
    )
    return dict(zip(names, ids, strict=True))


GONE = {"b1_old", "b1_in_cancelled", "b2_old_before_run", "b3_old"}


@pytest.mark.parametrize("batch_size", ["1", "2", "5000"])
def test_old_readings_go_and_training_data_stays(ini, db, house, capsys, batch_size):
    assert (
        prune.main([ini, "--older-than", "30d", "--batch-size", batch_size, "--quiet"])
        == 0
    )

    assert stored(db) == {id_ for name, id_ in house.items() if name not in GONE}
    out = capsys.readouterr().out
    assert "deleted 4 readings" in out and "3 kept for training runs" in out
    batches = {"1": 4, "2": 2, "5000": 1}[batch_size]
    assert f"in {batches} batches" in out
    [(actor, actor_type, details)] = prune_events(db)
    assert (actor, actor_type) == ("console:matron", "console")
    assert details["deleted"] == 4 and details["kept_for_training_runs"] == 3
    assert details["batch_size"] == int(batch_size) and details["finished"] is True


def test_a_batch_is_deleted_in_statements_of_bounded_ids(
    ini, db, house, capsys, monkeypatch
):
    monkeypatch.setattr("stethoscope.retention.services.IDS_PER_STATEMENT", 3)

    assert prune.main([ini, "--older-than", "30d", "--quiet"]) == 0

    assert stored(db) == {id_ for name, id_ in house.items() if name not in GONE}
    assert "deleted 4 readings from before" in capsys.readouterr().out


def test_running_it_again_deletes_nothing_more(ini, db, house, capsys):
    assert prune.main([ini, "--older-than", "30d", "--quiet"]) == 0
    left = stored(db)
    assert prune.main([ini, "--older-than", "30d", "--quiet"]) == 0

    assert stored(db) == left
    assert "deleted 0 readings" in capsys.readouterr().out
    assert [details["deleted"] for _, _, details in prune_events(db)] == [4, 0]


def test_a_dry_run_counts_and_deletes_nothing(ini, db, house, capsys):
    assert prune.main([ini, "--older-than", "30d", "--dry-run"]) == 0

    assert stored(db) == set(house.values())
    out = capsys.readouterr().out
    assert out.startswith("dry run: 4 readings from before ")
    assert "3 stay for training runs" in out and "nothing was deleted" in out
    assert prune_events(db) == []


def test_a_longer_age_keeps_more(ini, db, house, capsys):
    assert prune.main([ini, "--older-than", "7w", "--quiet"]) == 0  # 49 days

    gone = {"b1_in_cancelled", "b2_old_before_run"}
    assert stored(db) == {id_ for name, id_ in house.items() if name not in gone}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "30"], "a whole number and a unit"),
        (["--older-than", "30 days"], "a whole number and a unit"),
        (["--older-than", "59m"], "from 2d to 100 years"),
        (["--older-than", "47h"], "from 2d to 100 years"),
        (["--older-than", "30d", "--batch-size", "0"], "from 1 to 1,000,000"),
        (["--older-than", "30d", "--batch-size", "-5"], "from 1 to 1,000,000"),
        ([], "--older-than"),
    ],
)
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        prune.main(["console.ini", *argv])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_durations():
    assert prune.duration("30d") == datetime.timedelta(days=30)
    assert prune.duration("72h") == datetime.timedelta(hours=72)
    assert prune.duration("4320m") == datetime.timedelta(days=3)
    assert prune.duration("2w") == datetime.timedelta(days=14)
    assert prune.duration("172800s") == datetime.timedelta(days=2)


def test_a_missing_database_is_one_line(tmp_path, capsys):
    ini = tmp_path / "missing.ini"
    assert prune.main([str(ini), "--older-than", "30d"]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot load {ini}")


# ---- a located day: its stays kept ----------------------------------------------

ROOMS = ["kitchen", "lounge", "hall"]
LONDON = ZoneInfo("Europe/London")


def heard_in(room: str) -> dict[str, int]:
    return {f"b-{other}": -52 if other == room else -82 for other in ROOMS}


def ingest_day(app, badge_id: str, day: datetime.date) -> None:
    """A reading every 5 minutes of the site's ``day``, posted as a gateway's
    batch: kitchen until 08:00, lounge until 16:00, then the hall."""
    moment = datetime.datetime.combine(day, datetime.time(), LONDON)
    end = moment + datetime.timedelta(days=1)
    batch = []
    while moment < end:
        hour = moment.astimezone(LONDON).hour
        room = "kitchen" if hour < 8 else "lounge" if hour < 16 else "hall"
        batch.append(
            {
                "badge_id": badge_id,
                "pi_id": "pi-1",
                "beacons": heard_in(room),
                "observed_at": moment.isoformat(),
            }
        )
        moment += datetime.timedelta(minutes=5)
    body = app.post_json("/rssi_readings", batch).json
    assert body["created"] == len(batch)


@pytest.fixture
def located(engine, make_app, create_user, app_settings):
    """Site rose (London) with an active model; badge b1's readings of a
    whole day four days ago and of yesterday, posted through ingest; a
    training run of b1 from 10:00 to 12:00 of the old day. The old day and
    the model version's id."""
    add_site(engine, "rose", ROOMS, timezone="Europe/London")
    with Session(engine) as session, session.begin():
        session.add_all(
            [
                Gateway(id="pi-1", site_id="rose"),
                Badge(id="b1", site_id="rose", wearer="Mrs B."),
                *(Beacon(id=f"b-{r}", room_id=r, last_heard=NOW) for r in ROOMS),
            ]
        )
    model_dir = app_settings["stethoscope.model_dir"]
    version = register_model(engine, model_dir, "rose", ROOMS)
    with Session(engine) as session, session.begin():
        ModelService(session, ModelStore(model_dir)).activate(version, actor="test")
    today = NOW.astimezone(LONDON).date()
    day = today - datetime.timedelta(days=4)
    app = make_app()
    ingest_day(app, "b1", day)
    ingest_day(app, "b1", today - DAY)
    morning = datetime.datetime.combine(day, datetime.time(10), LONDON)
    add_run(engine, "b1", morning, morning + datetime.timedelta(hours=2))
    create_user("nurse", "staff")
    return day, version


def staff(make_app):
    """A new app (its caches empty), logged in as staff."""
    app = make_app()
    login(app, "nurse", "correct horse battery staple")
    return app


def answers(app, day: datetime.date) -> dict:
    base = "/badges/b1/"
    return {
        "stays": app.get(f"{base}stays?date={day}").json,
        "hourly": app.get(f"{base}location_history?date={day}&grain=3600").json,
        "ten_minutes": app.get(f"{base}location_history?date={day}&grain=600").json,
    }


def readings_of(db, day: datetime.date) -> set[datetime.datetime]:
    start = datetime.datetime.combine(day, datetime.time(), LONDON)
    db.rollback()
    return set(
        db.scalars(
            select(Reading.observed_at).where(
                Reading.observed_at >= start,
                Reading.observed_at < start + datetime.timedelta(days=1),
            )
        )
    )


def test_a_pruned_days_stays_answer_as_before(ini, db, make_app, located, capsys):
    day, version = located
    before = answers(staff(make_app), day)
    yesterday = day + 3 * DAY
    before_yesterday = answers(staff(make_app), yesterday)
    assert [stay["room_id"] for stay in before["stays"]] == ROOMS
    assert len(before["hourly"]) == 24 and len(before["ten_minutes"]) == 144

    assert prune.main([ini, "--older-than", "2d", "--quiet"]) == 0

    # Only the training run's readings of the day are left (10:00 to 12:00).
    morning = datetime.datetime.combine(day, datetime.time(10), LONDON)
    assert readings_of(db, day) == {
        morning + datetime.timedelta(minutes=5 * i) for i in range(25)
    }
    assert len(readings_of(db, yesterday)) == 288
    out = capsys.readouterr().out
    assert "deleted 263 readings" in out and "25 kept for training runs" in out
    assert "stays of 1 badge-days kept (3 stays)" in out
    archived = db.scalars(select(ArchivedStay).order_by(ArchivedStay.from_at)).all()
    assert {(row.badge_id, row.day, row.site_id) for row in archived} == {
        ("b1", day, "rose")
    }
    assert {row.model_version_id for row in archived} == {version}
    [(_, _, details)] = prune_events(db)
    assert (details["days_archived"], details["stays_archived"]) == (1, 3)

    app = staff(make_app)
    assert answers(app, day) == before
    assert answers(app, yesterday) == before_yesterday
    # Without a grain, each stay's first and last reading.
    points = app.get(f"/badges/b1/location_history?date={day}").json
    assert points == [
        [time, stay["room_id"]]
        for stay in before["stays"]
        for time in (stay["from"], stay["to"])
    ]
    refused = app.get(
        f"/badges/b1/location_history?date={day}&algorithm=raw", status=400
    )
    assert refused.json["errors"][0]["field"] == "algorithm"


def test_pruning_again_keeps_the_stays_made_when_the_day_was_whole(
    ini, db, make_app, located
):
    day, _ = located
    before = answers(staff(make_app), day)
    assert prune.main([ini, "--older-than", "2d", "--quiet"]) == 0
    # The run is deleted: its readings go too, the day's stays stay as made.
    db.execute(TrainingRun.__table__.delete())
    db.commit()

    assert prune.main([ini, "--older-than", "2d", "--quiet"]) == 0

    assert readings_of(db, day) == set()
    assert db.scalar(select(func.count()).select_from(ArchivedStay)) == 3
    assert answers(staff(make_app), day) == before


def test_a_dry_run_changes_nothing(ini, db, make_app, located, capsys):
    day, _ = located
    before = answers(staff(make_app), day)

    assert prune.main([ini, "--older-than", "2d", "--dry-run"]) == 0

    assert len(readings_of(db, day)) == 288
    assert db.scalar(select(func.count()).select_from(ArchivedStay)) == 0
    assert prune_events(db) == []
    assert "dry run: 263 readings" in capsys.readouterr().out
    assert answers(staff(make_app), day) == before
