"""Request ids, the access log line, and unexpected errors (500s): their
answer, their log and the webhook told of them, a few at a time."""

import json
import logging

import pytest

from stethoscope.ops.logging import JsonFormatter
from stethoscope.permissions import PUBLIC
from stethoscope.singletons import ERROR_NOTIFIER
from tests.support.webhook import Hook

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30, "b": -35}}
ID = "X-Request-ID"


@pytest.fixture
def db_url(sqlite_url):
    # Nothing here depends on the database.
    return sqlite_url


class Boom(Exception):
    """A bug."""


def boom(request):
    raise Boom("secret details of a resident")


def includeme(config):
    """The test-only view, through pyramid.includes (see ``broken_app``)."""
    config.add_route("test.boom", "/test/boom")
    config.add_view(boom, route_name="test.boom", permission=PUBLIC)


class Lines(logging.Handler):
    """The records of a logger, kept, and each formatted as JSON."""

    def __init__(self, name):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.records = []
        self.logger = logging.getLogger(name)

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.logger.addHandler(self)
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)

    def json(self) -> list[dict]:
        return [json.loads(self.format(record)) for record in self.records]


def test_every_response_has_an_id_and_every_error_body_too(make_app):
    app = make_app()

    health = app.get("/health")
    missing = app.get("/nowhere", status=404)
    fast_201 = app.post_json("/rssi_readings", READING, status=201)
    fast_409 = app.post_json("/rssi_readings", READING, status=409)

    ids = [r.headers[ID] for r in (health, missing, fast_201, fast_409)]
    assert len(set(ids)) == 4
    assert missing.json["request_id"] == missing.headers[ID]
    assert fast_409.json["request_id"] == fast_409.headers[ID]
    assert "request_id" not in fast_201.json


@pytest.mark.parametrize("path", ["/health", "/nowhere"])
def test_a_sane_incoming_id_is_kept(make_app, path):
    app = make_app()

    response = app.get(path, headers={ID: "nginx-1f2e.3d:4c"}, expect_errors=True)
    fast = app.post_json(
        "/rssi_readings", READING, headers={ID: "gw-G1-0001"}, status=201
    )

    assert response.headers[ID] == "nginx-1f2e.3d:4c"
    assert fast.headers[ID] == "gw-G1-0001"


@pytest.mark.parametrize("sent", ["", "x" * 65, "a b", "a\u00e9", "<script>"])
def test_an_insane_incoming_id_is_replaced(make_app, sent):
    app = make_app()

    response = app.get("/nowhere", headers={ID: sent}, status=404)

    assert response.headers[ID] != sent
    assert response.json["request_id"] == response.headers[ID]


def test_one_json_line_per_request_with_its_fields(make_app, create_user):
    from ..conftest import login

    app = make_app()
    with Lines("stethoscope.access") as lines:
        app.post_json("/rssi_readings", READING, status=201)  # fast path
        login(app, *create_user("viewer", "viewer"))
        del lines.records[1:]  # the login's
        page = app.get("/rssi_readings")
        app.get("/nowhere", status=404)

    fast, viewed, missing = lines.json()
    assert fast["logger"] == "stethoscope.access"
    assert fast["level"] == "INFO"
    assert {k: fast[k] for k in ("method", "route", "status", "gateway")} == {
        "method": "POST",
        "route": "ingest.readings",
        "status": 201,
        "gateway": "G1",
    }
    assert fast["duration_ms"] >= 0
    assert viewed["route"] == "ingest.readings.page"
    assert viewed["user"] == "viewer"
    assert viewed["request_id"] == page.headers[ID]
    assert (missing["route"], missing["status"]) == ("unmatched", 404)
    assert "user" not in missing and "gateway" not in missing


@pytest.fixture
def hook():
    served = Hook()
    yield served
    served.close()


@pytest.fixture
def broken_app(make_app, hook):
    return make_app(
        **{
            "pyramid.includes": __name__,
            "stethoscope.notify.webhook_url": hook.url,
        }
    )


def test_a_bug_is_a_json_500_logged_and_told_once(broken_app, hook):
    notifier = broken_app.app.registry[ERROR_NOTIFIER]
    with Lines("stethoscope.ops.errors") as lines:
        first = broken_app.get("/test/boom", status=500)
        assert hook.events[0].wait(10)
        second = broken_app.get("/test/boom", status=500)
    notifier.notifier.wait(10)

    assert first.json == {
        "status": 500,
        "error": "internal_server_error",
        "message": "internal error",
        "request_id": first.headers[ID],
    }
    [logged, again] = lines.json()
    assert logged["request_id"] == first.headers[ID]
    assert "Boom: secret details" in logged["traceback"]
    assert again["request_id"] == second.headers[ID]
    [message] = hook.bodies
    assert set(message) == {"text"}
    assert "Boom" in message["text"]
    assert "test.boom" in message["text"]
    assert first.headers[ID] in message["text"]
    # The exception's text may hold residents' data: the log has it.
    assert "secret" not in message["text"]
    assert (notifier.sent, notifier.suppressed) == (1, 1)
    metrics = broken_app.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert 'stethoscope_error_notifications_total{outcome="suppressed"} 1.0' in (
        metrics.text
    )


def test_a_bug_on_a_page_shows_the_request_id(broken_app, hook):
    page = broken_app.get("/test/boom", headers={"Accept": "text/html"}, status=500)

    assert page.content_type == "text/html"
    assert page.headers[ID] in page.text
    assert hook.events[0].wait(10)
