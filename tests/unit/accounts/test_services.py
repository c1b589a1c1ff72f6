"""The accounts' services record their own audit events: each change once,
in the caller's transaction, and a refused or empty change not at all; a
login attempt is recorded whatever it comes to."""

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.accounts.models import AuthSession, Role, User
from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import (
    AccountError,
    LoginService,
    LoginThrottle,
    SessionLimits,
    SessionService,
    ThrottleLimits,
    UserService,
)
from stethoscope.audit.models import AuditEvent
from stethoscope.audit.services import AuditService
from stethoscope.ops.ratelimit import MemoryRateLimiter
from tests.conftest import PASSWORD, count


class Events(list):
    """An audit callable that keeps what it is given."""

    def __call__(self, action, **event):
        self.append((action, event))


@pytest.fixture
def events():
    return Events()


def users(session, events) -> UserService:
    return UserService(session, Passwords("cheapest"), audit=events)


def test_each_change_is_recorded_once(engine, events):
    with Session(engine) as session, session.begin():
        service = users(session, events)
        user = service.create(" Nurse ", PASSWORD, "viewer")
        service.create("boss", PASSWORD, Role.ADMIN)
        service.set_role(user, "staff")
        service.set_password(user, PASSWORD + "!")
        service.set_disabled(user, True)
        service.set_disabled(user, False)
        service.end_sessions(user)
    assert events == [
        ("user.create", {"target": "nurse", "details": {"role": "viewer"}}),
        ("user.create", {"target": "boss", "details": {"role": "admin"}}),
        (
            "user.role",
            {"target": "nurse", "details": {"from": "viewer", "to": "staff"}},
        ),
        ("user.password", {"target": "nurse"}),
        ("user.disable", {"target": "nurse"}),
        ("user.enable", {"target": "nurse"}),
        ("user.sessions_end", {"target": "nurse"}),
    ]


def test_a_refused_or_empty_change_records_nothing(engine, events):
    with Session(engine) as session, session.begin():
        service = users(session, events)
        boss = service.create("boss", PASSWORD, "admin")
        del events[:]
        with pytest.raises(AccountError):
            service.create("boss", PASSWORD, "viewer")
        with pytest.raises(AccountError):
            service.set_password(boss, "short")
        with pytest.raises(AccountError):
            service.set_role(boss, "viewer")  # the last enabled admin
        with pytest.raises(AccountError):
            service.set_disabled(boss, True)
        with pytest.raises(AccountError):
            service.set_role(boss, "owner")
        assert service.set_role(boss, "admin") is False
        assert service.set_disabled(boss, False) is False
        assert boss.role == Role.ADMIN and not boss.disabled
    assert events == []


def logged(session):
    """An audit callable writing to the log in ``session``, as the console's."""

    def record(action, **event):
        AuditService(session).record(
            action, actor="console:matron", actor_type="console", **event
        )

    return record


def test_the_event_commits_or_aborts_with_its_change(engine):
    with Session(engine) as session:
        session.begin()
        users(session, logged(session)).create("nurse", PASSWORD, "viewer")
        session.rollback()
        assert count(session, User) == 0
        assert count(session, AuditEvent) == 0
    with Session(engine) as session, session.begin():
        users(session, logged(session)).create("nurse", PASSWORD, "viewer")
    with Session(engine) as session:
        assert count(session, User) == 1
        event = session.scalar(select(AuditEvent))
        assert (event.action, event.target, event.details) == (
            "user.create",
            "nurse",
            {"role": "viewer"},
        )


@pytest.fixture
def logins(engine, events):
    """A login service on its own session, with room for two failures."""
    with Session(engine) as session, session.begin():
        UserService(session, Passwords("cheapest")).create("nurse", PASSWORD, "staff")
    sessions = SessionService(
        None,
        SessionLimits(
            idle=datetime.timedelta(minutes=30), lifetime=datetime.timedelta(hours=8)
        ),
    )
    throttle = LoginThrottle(
        MemoryRateLimiter(), ThrottleLimits(per_user=2, per_ip=100, window_s=60)
    )
    with Session(engine) as session, session.begin():
        yield LoginService(
            session, users(session, Events()), sessions, throttle, audit=events
        )


def test_a_login_opens_a_session_and_is_recorded(logins, events):
    attempt = logins.log_in("nurse", PASSWORD, "10.0.0.1", "test")
    assert attempt.user.username == "nurse" and attempt.token
    assert logins.session.scalar(select(AuthSession.user_id)) == attempt.user.id
    logins.log_out(attempt.token, "nurse")
    assert logins.session.scalar(select(AuthSession)) is None
    assert events == [
        (
            "login.success",
            {"target": "nurse", "actor": "nurse", "actor_type": "user"},
        ),
        ("logout", {"target": "nurse"}),
    ]


def test_failed_and_throttled_logins_are_recorded(logins, events):
    """Each under the name tried, control characters escaped; a name no
    account can have is a failure like any other."""
    assert logins.log_in("nurse", "wrong", "10.0.0.1", None).token is None
    assert logins.log_in("nu\x00rse", PASSWORD, "10.0.0.1", None).token is None
    assert logins.log_in("nurse", "wrong", "10.0.0.1", None).token is None
    throttled = logins.log_in("nurse", PASSWORD, "10.0.0.1", None)
    assert throttled.token is None and throttled.retry_after > 0
    assert events == [
        ("login.failure", {"target": "nurse", "actor": "nurse"}),
        ("login.failure", {"target": "nu\\x00rse", "actor": "nu\\x00rse"}),
        ("login.failure", {"target": "nurse", "actor": "nurse"}),
        ("login.throttled", {"target": "nurse", "actor": "nurse"}),
    ]
    assert logins.session.scalar(select(AuthSession)) is None


def test_a_failed_login_without_a_name_names_no_actor(logins, events):
    assert logins.log_in("", PASSWORD, None, None).token is None
    assert events == [("login.failure", {"target": "", "actor": "-"})]
