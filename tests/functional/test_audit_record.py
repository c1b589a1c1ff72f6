"""Recording an audit event from a request that only reads (who looked at
whose history): it must commit whatever the request's read transaction is
doing, and never make that read fail."""

import pytest
from pyramid.interfaces import IRequestFactory
from pyramid.scripting import prepare
from sqlalchemy import select

from stethoscope.audit.models import AuditEvent
from stethoscope.audit.services import CONSOLE_ACTOR, record
from stethoscope.ingest.models import Reading
from stethoscope.singletons import DATABASE


@pytest.fixture
def request_env(make_app):
    app = make_app.wsgi()
    factory = app.registry.getUtility(IRequestFactory)
    request = factory.blank("/badges/b1/stays")
    env = prepare(request=request, registry=app.registry)
    yield request, app.registry[DATABASE]
    env["closer"]()


def test_a_read_records_in_a_transaction_of_its_own(request_env):
    request, database = request_env
    # The request's read transaction has taken its snapshot...
    request.db.scalars(select(Reading.id).limit(1)).all()
    # ...and another writer commits after it (SQLite: the read transaction
    # can no longer become a write one).
    with database.session(write=True) as other, other.begin():
        other.add(AuditEvent(action="other.write", actor="x", actor_type="user"))

    record(request, "locating.stays", target="b1", details={"date": "2026-12-07"})

    with database.session(write=False) as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert actions.count("locating.stays") == 1
    # Committed already, not waiting for the request's own transaction.
    assert "other.write" in actions


def test_a_console_scripts_request_records_the_console_user(request_env):
    request, database = request_env
    request.environ["REMOTE_ADDR"] = "192.0.2.7"
    request.environ[CONSOLE_ACTOR] = "console:matron"

    record(request, "labels.export", target="demo")

    with database.session(write=False) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "labels.export")
        ).one()
    assert (event.actor, event.actor_type, event.ip) == (
        "console:matron",
        "console",
        None,
    )
