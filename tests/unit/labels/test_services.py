"""LabelService against real databases (SQLite and PostgreSQL), with a clock."""

import datetime

import pytest
from sqlalchemy import insert, select

from stethoscope.errors import Conflict, NotFound, ValidationError
from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import fingerprint
from stethoscope.labels.models import TrainingRun
from stethoscope.labels.schemas import RoomCoverage, TrainingRunStats
from stethoscope.labels.services import LabelService
from stethoscope.registry.models import Room, Site

T0 = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def house(db):
    db.add(Site(id="home", name="Home", timezone="Europe/London"))
    for room_id in ("kitchen", "lounge", "hall"):
        db.add(Room(id=room_id, site_id="home", name=room_id.title()))
    db.commit()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def audit():
    return []


@pytest.fixture
def service(db, house, clock, audit):
    def record(action, *, target=None, details=None):
        audit.append((action, target, details))

    return LabelService(db, clock=clock, audit=record)


def add_reading(db, badge_id, at, beacons=None):
    beacons = beacons if beacons is not None else {"b-kitchen": -60}
    db.execute(
        insert(Reading).values(
            badge_id=badge_id,
            gateway_id="pi-1",
            received_at=at,
            observed_at=at,
            beacons=beacons,
            fingerprint=fingerprint(badge_id, beacons),
        )
    )


def seconds(n):
    return datetime.timedelta(seconds=n)


class TestStart:
    def test_starts_every_badge_at_one_moment(self, service, audit):
        runs = service.start(["b1", "b2", "b1"], "kitchen", "boss")

        assert [run.badge_id for run in runs] == ["b1", "b2"]
        assert {run.started_at for run in runs} == {T0}
        assert all(run.status == "open" for run in runs)
        assert all(run.created_by == "boss" for run in runs)
        assert [entry[0] for entry in audit] == ["run.start", "run.start"]
        assert audit[0][2]["room_id"] == "kitchen"

    def test_a_badge_in_an_open_run_is_refused_and_nothing_starts(self, service, db):
        service.start(["b1"], "kitchen", "boss")

        with pytest.raises(Conflict) as caught:
            service.start(["b2", "b1"], "lounge", "boss")

        assert caught.value.details["badge_id"] == "b1"
        assert "open run" in caught.value.message
        # Refused before anything was added.
        assert db.scalars(select(TrainingRun.badge_id)).all() == ["b1"]

    def test_a_start_inside_a_finished_run_overlaps(self, service, clock):
        service.start(["b1"], "kitchen", "boss")
        clock.advance(600)
        service.end(badge_ids=["b1"], actor="boss")

        with pytest.raises(Conflict) as caught:
            service.start(["b1"], "lounge", "boss", started_at=T0 + seconds(300))

        assert "overlap" in caught.value.message
        # Right after the end is fine: spans are half-open.
        assert service.start(["b1"], "lounge", "boss", started_at=clock.now)

    def test_a_start_before_a_later_run_overlaps_it(self, service, clock):
        clock.advance(600)
        service.start(["b1"], "kitchen", "boss")

        with pytest.raises(Conflict):
            service.start(["b1"], "lounge", "boss", started_at=T0)

    def test_cancelled_runs_do_not_block(self, service):
        run = service.start(["b1"], "kitchen", "boss")[0]
        service.cancel(run.id, "boss")

        assert service.start(["b1"], "kitchen", "boss")

    @pytest.mark.parametrize(
        ("badges", "room", "field"),
        [
            ([], "kitchen", "badge_ids"),
            (["has space"], "kitchen", "badge_ids"),
            (["x" * 65], "kitchen", "badge_ids"),
            ("b1", "kitchen", "badge_ids"),
            (["b1"], "attic", "room_id"),
            (["b1"], "", "room_id"),
        ],
    )
    def test_bad_input_names_the_field(self, service, badges, room, field):
        with pytest.raises(ValidationError) as caught:
            service.start(badges, room, "boss")

        assert caught.value.field == field


class TestEnd:
    def test_by_badge_and_by_run(self, service, clock, audit):
        runs = service.start(["b1", "b2", "b3"], "kitchen", "boss")
        clock.advance(60)

        ended = service.end(badge_ids=["b1", "b2"], actor="boss")
        by_id = service.end(run_ids=[runs[2].id], actor="boss")

        assert [s.run.status for s in ended + by_id] == ["completed"] * 3
        assert {s.run.ended_at for s in ended + by_id} == {T0 + seconds(60)}
        assert [a[0] for a in audit].count("run.end") == 3

    def test_ending_without_readings_is_allowed_and_flagged(self, service, clock):
        service.start(["b1"], "kitchen", "boss")
        clock.advance(60)

        (result,) = service.end(badge_ids=["b1"], actor="boss")

        assert result.readings == 0
        assert any("no readings" in warning for warning in result.warnings)

    def test_a_badge_without_an_open_run_is_a_conflict(self, service):
        with pytest.raises(Conflict) as caught:
            service.end(badge_ids=["b9"], actor="boss")

        assert caught.value.details["badge_id"] == "b9"

    def test_ending_twice_is_a_conflict(self, service, clock):
        run = service.start(["b1"], "kitchen", "boss")[0]
        clock.advance(10)
        service.end(run_ids=[run.id], actor="boss")

        with pytest.raises(Conflict):
            service.end(run_ids=[run.id], actor="boss")

    def test_unknown_run(self, service):
        with pytest.raises(NotFound):
            service.end(run_ids=[999], actor="boss")

    def test_cannot_end_before_the_start(self, service):
        service.start(["b1"], "kitchen", "boss")

        with pytest.raises(ValidationError) as caught:
            service.end(badge_ids=["b1"], actor="boss")

        assert caught.value.field == "ended_at"

    def test_needs_runs_or_badges(self, service):
        with pytest.raises(ValidationError):
            service.end(actor="boss")


class TestStats:
    def test_counts_the_span_only(self, service, db, clock):
        add_reading(db, "b1", T0 - seconds(1))  # before the run
        run = service.start(["b1"], "kitchen", "boss")[0]
        add_reading(db, "b1", T0, {"b-kitchen": -60, "b-hall": -80})
        add_reading(db, "b1", T0 + seconds(5), {"b-kitchen": -61})
        add_reading(db, "b2", T0 + seconds(5), {"b-lounge": -61})  # another badge
        clock.advance(8)

        (stats,) = service.stats([run.id])

        assert stats.readings == 2
        assert stats.beacons == ["b-hall", "b-kitchen"]
        assert stats.last_reading_at == T0 + seconds(5)
        assert stats.seconds_since_last == 3
        assert not stats.silent
        json = TrainingRunStats.of(stats).model_dump(mode="json")
        assert json["beacon_count"] == 2
        assert json["status"] == "open"

    def test_open_runs_by_default(self, service, clock):
        service.start(["b1", "b2"], "kitchen", "boss")
        clock.advance(5)
        service.end(badge_ids=["b2"], actor="boss")

        assert [s.run.badge_id for s in service.stats()] == ["b1"]

    def test_silent_after_thirty_seconds_without_a_reading(self, service, db, clock):
        run = service.start(["b1"], "kitchen", "boss")[0]
        clock.advance(30)
        assert not service.stats([run.id])[0].silent

        clock.advance(1)
        (stats,) = service.stats([run.id])
        assert stats.silent
        assert stats.seconds_since_last is None
        assert stats.warnings

        add_reading(db, "b1", clock.now)
        clock.advance(10)
        assert not service.stats([run.id])[0].silent
        clock.advance(21)
        assert service.stats([run.id])[0].silent

    def test_a_completed_run_is_never_silent_and_stops_counting(
        self, service, db, clock
    ):
        run = service.start(["b1"], "kitchen", "boss")[0]
        add_reading(db, "b1", T0 + seconds(1))
        clock.advance(10)
        service.end(run_ids=[run.id], actor="boss")
        add_reading(db, "b1", T0 + seconds(10))  # at the end: outside
        clock.advance(600)

        (stats,) = service.stats([run.id])

        assert stats.readings == 1
        assert not stats.silent


def completed_run(service, db, clock, badge, room, readings):
    start = clock.now
    service.start([badge], room, "boss")
    for n in range(readings):
        add_reading(db, badge, start + seconds(n))
    clock.advance(max(readings, 1))
    service.end(badge_ids=[badge], actor="boss")
    clock.advance(1)


class TestCoverage:
    def test_counts_and_warnings(self, service, db, clock):
        for badge in ("b1", "b2", "b1"):
            completed_run(service, db, clock, badge, "kitchen", 100)
        completed_run(service, db, clock, "b1", "lounge", 10)

        rooms = {room.room.id: room for room in service.coverage()}

        kitchen, lounge, hall = rooms["kitchen"], rooms["lounge"], rooms["hall"]
        assert (kitchen.runs, kitchen.readings, kitchen.badges) == (3, 300, 2)
        assert kitchen.warnings == []
        assert (lounge.runs, lounge.readings, lounge.badges) == (1, 10, 1)
        assert any("grouped cross-validation" in w for w in lounge.warnings)
        assert any("fewer than 200 readings" in w for w in lounge.warnings)
        assert any("imbalance" in w for w in lounge.warnings)
        assert (hall.runs, hall.readings) == (0, 0)
        assert RoomCoverage.of(kitchen).site_id == "home"

    def test_open_and_cancelled_runs_do_not_count(self, service, db, clock):
        completed_run(service, db, clock, "b1", "kitchen", 5)
        run = service.start(["b2"], "kitchen", "boss")[0]
        add_reading(db, "b2", clock.now)
        clock.advance(5)
        cancelled = service.start(["b3"], "kitchen", "boss")[0]
        add_reading(db, "b3", clock.now)
        clock.advance(5)
        service.end(run_ids=[cancelled.id], actor="boss")
        service.cancel(cancelled.id, "boss")

        kitchen = {c.room.id: c for c in service.coverage()}["kitchen"]

        assert (kitchen.runs, kitchen.readings, kitchen.badges) == (1, 5, 1)
        assert run.status == "open"

    def test_relabel_and_delete_move_and_drop_readings(self, service, db, clock, audit):
        completed_run(service, db, clock, "b1", "kitchen", 7)
        run = db.scalars(select(TrainingRun)).one()

        service.relabel(run.id, "lounge", "boss")
        rooms = {c.room.id: c for c in service.coverage()}
        assert (rooms["kitchen"].readings, rooms["lounge"].readings) == (0, 7)
        assert audit[-1][0] == "run.relabel"
        assert audit[-1][2] == {"run_id": run.id, "from": "kitchen", "to": "lounge"}

        service.delete(run.id, "boss")
        rooms = {c.room.id: c for c in service.coverage()}
        assert rooms["lounge"].readings == 0
        assert audit[-1][0] == "run.delete"
        # The readings themselves stay.
        assert len(db.scalars(select(Reading.id)).all()) == 7

    def test_by_site(self, service, db):
        db.add(Site(id="other", name="Other", timezone="UTC"))
        db.add(Room(id="shed", site_id="other", name="Shed"))
        db.flush()

        assert [c.room.id for c in service.coverage("other")] == ["shed"]


class TestChanges:
    def test_cancel_twice_is_a_conflict(self, service):
        run = service.start(["b1"], "kitchen", "boss")[0]
        service.cancel(run.id, "boss")

        assert run.status == "cancelled"
        with pytest.raises(Conflict):
            service.cancel(run.id, "boss")

    def test_relabel_to_an_unknown_room(self, service):
        run = service.start(["b1"], "kitchen", "boss")[0]

        with pytest.raises(ValidationError) as caught:
            service.relabel(run.id, "attic", "boss")

        assert caught.value.field == "room_id"

    def test_relabel_to_the_same_room_records_nothing(self, service, audit):
        run = service.start(["b1"], "kitchen", "boss")[0]

        service.relabel(run.id, "kitchen", "boss")

        assert [a[0] for a in audit] == ["run.start"]

    def test_delete_unknown(self, service):
        with pytest.raises(NotFound):
            service.delete(12345, "boss")

    def test_list_filters_and_pages(self, service, clock):
        service.start(["b1", "b2"], "kitchen", "boss")
        clock.advance(5)
        service.end(badge_ids=["b1"], actor="boss")
        service.start(["b3"], "lounge", "boss")

        runs, total = service.page(status="open")
        assert total == 2 and {r.badge_id for r in runs} == {"b2", "b3"}
        runs, total = service.page(room_id="kitchen", limit=1)
        assert total == 2 and len(runs) == 1
        runs, total = service.page(badge_id="b1", status="completed")
        assert [r.badge_id for r in runs] == ["b1"]
        with pytest.raises(ValidationError):
            service.page(status="weird")
