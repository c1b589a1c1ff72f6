"""The one decision on a POST of readings, for the view and the fast path."""

import datetime

import pytest

from stethoscope.errors import Invalid, Refused, TooLarge, UnsupportedMediaType
from stethoscope.ingest.admission import admit, is_json
from stethoscope.ingest.services import IngestLimits
from stethoscope.security import OPEN_INGEST, IngestGrant

LIMITS = IngestLimits(
    max_body_bytes=100,
    max_batch_bytes=1000,
    max_batch_items=10,
    max_beacons=2,
    max_age=datetime.timedelta(days=1),
    max_clock_skew=datetime.timedelta(seconds=1),
)
READING = b'{"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30}}'


def let_in(body: bytes, grant=OPEN_INGEST, content_type="application/json"):
    return admit(grant, content_type, len(body), lambda: body, LIMITS)


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json; charset=utf-8", True),
        ("application/json-seq", False),
        ("text/plain", False),
        ("", False),
    ],
)
def test_the_media_type_ignores_case_and_parameters(content_type, json):
    assert is_json(content_type) is json


def test_a_reading_is_let_in_as_the_model():
    item = let_in(READING)

    assert (item.badge_id, item.pi_id, item.beacons) == ("B1", "G1", {"a": -30})


def test_a_batch_is_let_in_as_a_list_of_items_to_validate():
    assert let_in(b"[1, 2]") == [1, 2]


@pytest.mark.parametrize(
    ("body", "kwargs", "error"),
    [
        (READING, {"content_type": "text/plain"}, UnsupportedMediaType),
        (b"[" + b"0," * 600 + b"0]", {}, TooLarge),  # above max_batch_bytes
        (b'{"pad": "' + b"x" * 100 + b'"}', {}, TooLarge),  # a single reading
        (b"{nope", {}, Invalid),
        (
            b'{"badge_id": "B1", "pi_id": "G1", "beacons": {"a": 1, "b": 2, "c": 3}}',
            {},
            Invalid,
        ),
        (READING, {"grant": IngestGrant("G2")}, Refused),  # another gateway's
    ],
)
def test_refusals(body, kwargs, error):
    with pytest.raises(error):
        let_in(body, **kwargs)


def test_a_token_is_good_for_its_own_gateway():
    assert let_in(READING, grant=IngestGrant("G1")).pi_id == "G1"


def test_a_declared_length_above_the_limit_is_refused_unread():
    def read():
        raise AssertionError("the body was read")

    with pytest.raises(TooLarge):
        admit(OPEN_INGEST, "application/json", 5000, read, LIMITS)
