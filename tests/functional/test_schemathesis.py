"""Schemathesis against /openapi.json: requests generated from the document,
valid and not, each answered without a 500 and as the document says.

One app on SQLite with a small house whose ids are those schemathesis
tries first ("0", 1), so that requests find rows and answer with real
bodies, not only 404s. An admin's API token signs every request but a
gateway's posting of readings, which takes the gateway's token. The run
is bounded (a few examples an operation, derandomized, no example
database) so that it is the same in every CI run and cheap.
"""

import datetime
import functools

import pytest
import schemathesis
import webtest
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.accounts.tokens import UserTokenService
from stethoscope.audit.services import AuditService
from stethoscope.labels.models import TrainingRun
from stethoscope.learning.artifacts import ModelStore
from stethoscope.learning.services import ModelService
from stethoscope.registry.models import Badge, Beacon, Gateway
from stethoscope.registry.tokens import GatewayTokenService, TokenCache
from tests.functional.test_locating import add_readings, live
from tests.support.models import add_site, register_model

# The smallest ids of the document's patterns: what the generator tries
# first for a path, a query or a body.
ID = "0"
ROOMS = [ID, "1"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The coverage phase (every boundary of every parameter and property, a
# few hundred requests) sends valid values only; invalid ones come from the
# fuzzing phase, with max_examples below. Its requests with a method a path
# does not take are left out too: every path answers those 405, before any
# view or permission (test_security_matrix.py).
CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {
            "coverage": {
                "unexpected-methods": [],
                "generation": {"mode": "positive"},
            }
        }
    }
)


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


@pytest.fixture
def app_settings(app_settings):
    return {
        **app_settings,
        # Production's: a gateway posts with its own token.
        "stethoscope.ingest.require_token": "true",
        # Models are read again at every request: activating one is seen.
        "stethoscope.models.refresh_seconds": "0",
    }


@pytest.fixture
def house(engine, app_settings):
    """Site "0" with rooms "0" and "1", an active model, gateway "0" and
    badge "0" heard just now, beacons, and training run 1."""
    model_dir = app_settings["stethoscope.model_dir"]
    add_site(engine, ID, ROOMS)
    with Session(engine) as session, session.begin():
        session.add_all(
            [
                Gateway(id=ID, site_id=ID),
                Badge(id=ID, site_id=ID, wearer="Mrs B."),
                Beacon(id=ID, room_id=ID, label="door"),
                *(Beacon(id=f"b-{room}", room_id=room) for room in ROOMS),
            ]
        )
    version = register_model(engine, model_dir, ID, ROOMS)
    with Session(engine) as session, session.begin():
        ModelService(session, ModelStore(model_dir)).activate(version, actor="test")
    live(engine, ID, {"b-0": -52, "b-1": -81}, gateway_id=ID)
    started = datetime.datetime(2026, 11, 20, 9, 0, tzinfo=datetime.UTC)
    add_readings(
        engine,
        ID,
        [(started + datetime.timedelta(minutes=i), {"b-0": -50}) for i in range(5)],
        gateway_id=ID,
    )
    with Session(engine) as session, session.begin():
        session.add(
            TrainingRun(
                badge_id=ID,
                room_id=ID,
                started_at=started,
                ended_at=started + datetime.timedelta(minutes=10),
                created_by="test",
            )
        )


@pytest.fixture
def tokens(engine, create_user) -> dict[str, str]:
    """An admin's API token ("admin") and gateway "0"'s token ("gateway")."""
    create_user("boss", "admin")
    with Session(engine) as session, session.begin():
        gateway, _ = GatewayTokenService(session, TokenCache(0)).create(ID, "test")
        audit = functools.partial(
            AuditService(session).record, actor="test", actor_type="console"
        )
        user = UserService(session, Passwords("cheapest")).require("boss")
        admin, _ = UserTokenService(session, audit).create(user, "test")
    return {"admin": admin, "gateway": gateway}


def uniform_tuples(node):
    """``node`` with each tuple of one item schema (``prefixItems: [S, S]``)
    as the same array spelled ``items: S`` (its minItems and maxItems stay).

    schemathesis 4 rewrites a response's ``prefixItems`` to draft 4's
    ``items: [...]`` and then checks it as a 3.1 schema, which refuses it:
    History's ``[time, room]`` pairs would fail as an invalid document.
    """
    if isinstance(node, list):
        return [uniform_tuples(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: uniform_tuples(value) for key, value in node.items()}
    prefix = node.get("prefixItems")
    if prefix and "items" not in node and all(item == prefix[0] for item in prefix):
        node["items"] = node.pop("prefixItems")[0]
    return node


@pytest.fixture
def api(request, make_app, house):
    # The app itself, not tests.support.openapi's DocumentedApp around it:
    # schemathesis is the judge here, and reports rather than raises.
    app = make_app.wsgi().app
    document = webtest.TestApp(app).get("/openapi.json").json
    schema = schemathesis.openapi.from_dict(uniform_tuples(document), config=CONFIG)
    schema.app = app
    # schemathesis 4's lazy loader reads the private Function._nodeid, which
    # pytest 9.2 no longer has; the public node id serves it the same.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    return schema


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(
    max_examples=5,
    derandomize=True,
    database=None,
    # A shared CI machine is slow at times, and many generated bodies are
    # filtered out for not matching their schema: neither is a failure.
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_documented(case, tokens):
    posting = case.method == "POST" and case.path == "/rssi_readings"
    token = tokens["gateway" if posting else "admin"]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
