"""Bad input is a clear 4xx naming the field: never a 500, never a row."""

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stethoscope.ingest.models import Reading
from tests.conftest import count

VALID = {"badge_id": "1", "pi_id": "2", "beacons": {"a": -30, "b": -35}}


@pytest.fixture
def db_url(sqlite_url):
    # Validation happens before any database work; one database kind will do.
    return sqlite_url


# NaN and Infinity are not JSON: the body itself is refused (see below).
finite = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | finite | st.text()
json_values = st.recursive(
    json_scalars | st.integers(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
bad_ids = (
    st.text(min_size=65, max_size=80, alphabet="abc")
    | st.just("")
    | st.text(min_size=1, max_size=10).filter(
        lambda s: not all("!" <= c <= "~" for c in s)
    )
    | json_values.filter(lambda v: not isinstance(v, str))
)
bad_rssi = (
    st.integers(max_value=-129)
    | st.integers(min_value=21)
    # A whole float within the range is its integer (JSON Schema's integer).
    | finite.filter(lambda x: not (x.is_integer() and -128 <= x <= 20))
    | st.booleans()
    | st.text()
    | st.none()
)

# Epoch seconds (or milliseconds) of the last three days as text: lax
# datetime parsing takes them, and the age check would then let them in.
NOW = int(time.time())
recent_seconds = st.integers(NOW - 3 * 86400, NOW)
epoch_texts = (
    recent_seconds.map(str)
    | recent_seconds.map(lambda s: f"+{s}")
    | recent_seconds.map(lambda s: str(s * 1000))
    | st.floats(NOW - 3 * 86400, NOW).map(str)
    | st.sampled_from(["0", "-1", "1700000000.5", "1.7e9"])
)


@st.composite
def out_of_range_times(draw):
    """ISO-8601 text whose UTC time is before year 1 or after year 9999."""
    offset = draw(st.integers(1, 24 * 60 - 1))  # minutes
    offset_hours, offset_minutes = divmod(offset, 60)
    if draw(st.booleans()):
        sign, date, minute = "+", "0001-01-01", draw(st.integers(0, offset - 1))
    else:
        sign, date = "-", "9999-12-31"
        minute = draw(st.integers(24 * 60 - offset, 24 * 60 - 1))
    second = draw(st.integers(0, 59))
    return (
        f"{date}T{minute // 60:02d}:{minute % 60:02d}:{second:02d}"
        f"{sign}{offset_hours:02d}:{offset_minutes:02d}"
    )


bad_times = (
    st.integers()
    | st.text(alphabet="0123456789-:TZ ", max_size=12)
    | st.just("2026-13-01T00:00:00Z")
    | epoch_texts
    | out_of_range_times()
)


@pytest.fixture(params=["fast path", "whole way"])
def poster(request):
    """An app to post with: without a cookie a single reading is validated
    by the fast path first; with one (a logged-in viewer) it goes the whole
    way."""
    return request.getfixturevalue(
        "anonymous" if request.param == "fast path" else "testapp"
    )


@st.composite
def invalid_readings(draw):
    """A valid reading with exactly one thing wrong with it, and that field."""
    reading = json.loads(json.dumps(VALID))
    choice = draw(
        st.sampled_from(["id", "rssi", "beacons", "missing", "strength", "time"])
    )
    if choice == "id":
        field = draw(st.sampled_from(["badge_id", "pi_id"]))
        reading[field] = draw(bad_ids)
    elif choice == "rssi":
        field = "beacons.a"
        reading["beacons"]["a"] = draw(bad_rssi)
    elif choice == "beacons":
        field = "beacons"
        reading["beacons"] = draw(
            json_values.filter(lambda v: not isinstance(v, dict))
            | st.dictionaries(
                st.text(min_size=1, max_size=4, alphabet="xyz"),
                st.integers(-100, -1),
                min_size=33,
                max_size=40,
            )
        )
    elif choice == "missing":
        field = draw(st.sampled_from(["badge_id", "pi_id", "beacons"]))
        del reading[field]
    elif choice == "strength":
        field = "badge_strength"
        reading[field] = draw(
            st.integers(max_value=-129) | st.integers(min_value=128) | st.text()
        )
    else:
        field = "observed_at"
        reading[field] = draw(bad_times)
    return reading, field


# No deadline: each example is a real request, slow when the machine is busy.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=invalid_readings())
def test_one_bad_field_is_400_naming_it(poster, case):
    reading, field = case
    response = poster.post(
        "/rssi_readings",
        json.dumps(reading, allow_nan=True),
        content_type="application/json",
        status=400,
    )
    named = {error["field"] for error in response.json["errors"]}
    assert any(name == field or name.startswith(field + ".") for name in named), named


# No deadline: each example is a real request, slow when the machine is busy.
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(observed_at=bad_times)
def test_a_bad_time_in_a_batch_rejects_that_item_only(anonymous, db, observed_at):
    before = count(db, Reading)
    # Another badge each time, so the good item is created, not a duplicate
    # of the previous example's.
    good = {
        **VALID,
        "badge_id": f"B{before}",
        "observed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    response = anonymous.post_json(
        "/rssi_readings", [{**VALID, "observed_at": observed_at}, good], status=200
    )
    assert response.json["results"][0]["status"] == "rejected"
    assert {e["field"] for e in response.json["results"][0]["errors"]} == {
        "0.observed_at"
    }
    assert response.json["results"][1]["status"] == "created"
    assert count(db, Reading) == before + 1


@pytest.mark.parametrize(
    "observed_at",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        # Ids that do not change with the clock, for pytest-xdist.
        pytest.param(str(NOW), id="epoch-seconds-now"),
        pytest.param(str(NOW * 1000), id="epoch-milliseconds-now"),
        "0",
        "-1",
        "1700000000.5",
    ],
)
def test_a_time_that_is_not_iso_text_or_out_of_range_is_400(poster, db, observed_at):
    response = poster.post_json(
        "/rssi_readings", {**VALID, "observed_at": observed_at}, status=400
    )
    assert response.json["error"] == "invalid"
    assert [e["field"] for e in response.json["errors"]] == ["observed_at"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert count(db, Reading) == 0


# No deadline: each example is a real request, slow when the machine is busy.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_are_4xx(testapp, db, body):
    response = testapp.post(
        "/rssi_readings", body, content_type="application/json", expect_errors=True
    )
    assert response.status_int in {400, 413}
    assert response.json["status"] == response.status_int
    assert count(db, Reading) == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"badge_id": "1", "pi_id": "2", "beacons": {"a": NaN}}',
        b'{"badge_id": "1", "pi_id": "2", "beacons": {"a": -Infinity}}',
        b'{"badge_id": "1", "pi_id": "2", "beacons": {"a": -1' + b"0" * 400 + b"}}",
        b'{"badge_id": "\\ud800", "pi_id": "2", "beacons": {"a": -30}}',
        b'{"badge_id": "1", "pi_id": "2", "beacons": {"a": -30}, "x": '
        + b"[" * 2000
        + b"]" * 2000
        + b"}",
        b'{"badge_id": "1", "pi_id": "2", "beacons": {"a": true}}',
        b'"just a string"',
        b"null",
        b"12",
    ],
)
def test_json_edge_cases_are_400(testapp, db, body):
    response = testapp.post(
        "/rssi_readings", body, content_type="application/json", status=400
    )
    assert response.json["errors"]
    assert count(db, Reading) == 0


def test_big_single_body_is_413(testapp, db):
    padding = "x" * 20_000
    response = testapp.post_json(
        "/rssi_readings", {**VALID, "note": padding}, status=413
    )
    assert "16384" in response.json["message"]
    assert count(db, Reading) == 0


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", ""]
)
def test_not_json_is_415(testapp, db, content_type):
    response = testapp.post(
        "/rssi_readings",
        json.dumps(VALID),
        headers={"Content-Type": content_type} if content_type else {},
        status=415,
    )
    assert response.json["error"] == "unsupported_media_type"
    assert count(db, Reading) == 0


def test_json_with_charset_is_accepted(testapp):
    testapp.post(
        "/rssi_readings",
        json.dumps(VALID),
        content_type="application/json; charset=utf-8",
        status=201,
    )


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_wrong_method_is_405_with_allow(testapp, method):
    response = getattr(testapp, method)("/rssi_readings", status=405)
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert response.json["status"] == 405


def test_unknown_path_is_json_404(testapp):
    response = testapp.get("/nowhere", status=404)
    assert response.json == {
        "status": 404,
        "error": "not_found",
        "message": "nothing here: /nowhere",
        "request_id": response.headers["X-Request-ID"],
    }


def test_browser_gets_an_html_error_page(testapp):
    response = testapp.get("/nowhere", headers={"Accept": "text/html"}, status=404)
    assert response.content_type == "text/html"
    assert "404 Not Found" in response.text
