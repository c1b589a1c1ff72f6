import json
import logging

import pytest

from stethoscope.ops.access import log_request, request_id, sane_id, with_request_id


def test_an_id_is_made_once_per_request():
    environ = {}

    first = request_id(environ)

    assert request_id(environ) == first
    assert request_id({}) != first
    prefix, _, counter = first.partition("-")
    assert len(prefix) == 12 and counter.isdigit()
    assert sane_id(first)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("a\nb", False),
        ('a"b', False),
        ("", False),
    ],
)
def test_an_incoming_id_is_kept_only_when_sane(sent, kept):
    assert (request_id({"HTTP_X_REQUEST_ID": sent}) == sent) is kept


def test_an_id_added_to_a_rendered_body_keeps_it_json():
    body = with_request_id(b'{"status":409,"error":"duplicate"}', "abc-1")

    assert json.loads(body) == {
        "status": 409,
        "error": "duplicate",
        "request_id": "abc-1",
    }


def test_the_line_says_who(caplog):
    caplog.set_level(logging.INFO, "stethoscope.access")

    log_request("GET", "ops.health", 200, 0.0123, "rid-1", ("user", "ann"))

    [record] = caplog.records
    assert record.getMessage() == "GET ops.health 200 12.3 ms rid-1 user=ann"
    assert record.fields == {
        "method": "GET",
        "route": "ops.health",
        "status": 200,
        "duration_ms": 12.3,
        "request_id": "rid-1",
        "user": "ann",
    }


def test_nothing_is_built_when_the_line_is_not_wanted(caplog):
    caplog.set_level(logging.WARNING, "stethoscope.access")

    log_request("GET", "ops.health", 200, 0.01, "rid-1")

    assert caplog.records == []
