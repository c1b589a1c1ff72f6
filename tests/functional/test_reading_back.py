"""GET /rssi_readings (live charts) and GET /gateways, /badges, /health."""

import pytest
from sqlalchemy import select

from stethoscope.registry.models import Badge, Gateway
from stethoscope.singletons import ACTIVITY


def post(app, badge, rssi, gateway="G1", **extra):
    return app.post_json(
        "/rssi_readings",
        {"badge_id": badge, "pi_id": gateway, "beacons": {"a": rssi}},
        status=extra.pop("status", 201),
        **extra,
    )


class TestReadings:
    def test_latest_then_cursor(self, testapp):
        ids = [post(testapp, "B1", -40 - n).json["id"] for n in range(5)]
        post(testapp, "B2", -90)
        page = testapp.get("/rssi_readings", {"badge_id": "B1", "limit": 3}).json
        assert [r["id"] for r in page["readings"]] == ids[2:]
        assert page["next_after"] == ids[-1]
        assert page["readings"][-1]["beacons"] == {"a": -44}

        newer = post(testapp, "B1", -60).json["id"]
        page = testapp.get("/rssi_readings", {"badge_id": "B1", "after": ids[-1]}).json
        assert [r["id"] for r in page["readings"]] == [newer]
        page = testapp.get("/rssi_readings", {"badge_id": "B1", "after": newer}).json
        assert page == {"readings": [], "next_after": newer}

    def test_all_badges(self, testapp):
        post(testapp, "B1", -40)
        post(testapp, "B2", -50)
        readings = testapp.get("/rssi_readings").json["readings"]
        assert [r["badge_id"] for r in readings] == ["B1", "B2"]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"after": "x"}, "after"),
            ({"after": "-1"}, "after"),
            ({"limit": "0"}, "limit"),
            ({"limit": "100000"}, "limit"),
            ({"badge_id": "a b"}, "badge_id"),
            ({"badge_id": "x" * 65}, "badge_id"),
        ],
    )
    def test_bad_query_is_400_naming_it(self, testapp, query, field):
        response = testapp.get("/rssi_readings", query, status=400)
        assert response.json["errors"][0]["field"] == field


class TestSeen:
    def test_gateways_and_badges_are_counted_without_a_write_per_post(
        self, testapp, db
    ):
        post(testapp, "B1", -40, gateway="G1")
        post(testapp, "B1", -40, gateway="G2", status=409)
        post(
            testapp,
            "B2",
            -41,
            gateway="G2",
            extra_environ={"REMOTE_ADDR": "192.0.2.77"},
        )
        # Nothing written yet: counts wait in memory until a flush.
        assert db.get(Gateway, "G1") is None

        gateways = {g["id"]: g for g in testapp.get("/gateways").json["gateways"]}
        assert set(gateways) == {"G1", "G2"}
        assert (gateways["G2"]["posts"], gateways["G2"]["duplicates"]) == (2, 1)
        assert gateways["G2"]["last_ip"] == "192.0.2.77"
        assert gateways["G1"]["online"] is True
        assert gateways["G1"]["seconds_since_seen"] >= 0

        badges = {b["id"]: b for b in testapp.get("/badges").json["badges"]}
        assert (badges["B1"]["posts"], badges["B1"]["duplicates"]) == (2, 1)
        assert badges["B2"]["last_gateway_id"] == "G2"

        # Written counts and counts still in memory add up.
        testapp.app.registry[ACTIVITY].flush()
        db.rollback()
        assert db.get(Gateway, "G2").posts == 2
        post(testapp, "B3", -42, gateway="G2")
        gateways = {g["id"]: g for g in testapp.get("/gateways").json["gateways"]}
        assert gateways["G2"]["posts"] == 3

    def test_counts_from_several_processes_add_up(self, make_app, db):
        first, second = make_app(), make_app()
        post(first, "B1", -40, gateway="G1")
        post(second, "B2", -40, gateway="G1")
        post(second, "B3", -40, gateway="G1")
        for app in (first, second):
            app.app.registry[ACTIVITY].flush()
        db.rollback()
        assert db.get(Gateway, "G1").posts == 3
        assert set(db.scalars(select(Badge.id))) == {"B1", "B2", "B3"}


def test_health(make_app, redis_url):
    app = make_app(
        **{"stethoscope.dedup.backend": "redis", "stethoscope.redis_url": redis_url}
    )
    health = app.get("/health").json
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert health["dedup"]["backend"] == "redis"
    assert health["dedup"]["redis"] == "ok"
