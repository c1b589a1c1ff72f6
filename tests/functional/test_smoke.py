from stethoscope.ingest.models import Reading
from tests.conftest import count


def test_post_then_duplicate(testapp, db):
    payload = {"badge_id": "1", "pi_id": "2", "beacons": {"a": -30}}
    assert testapp.post_json("/rssi_readings", payload, status=201).json["id"]
    testapp.post_json("/rssi_readings", {**payload, "pi_id": "3"}, status=409)
    assert count(db, Reading) == 1
