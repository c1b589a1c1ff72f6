"""UserTokenVerifier: a token's user as they are now, read as columns.

How tokens behave for callers of the app (roles, refusals, ``last_used_at``)
is in tests/functional/test_user_tokens.py; this module is about the
verifier's answer itself, on SQLite and PostgreSQL.
"""

import datetime

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from stethoscope.accounts.models import Role, User, UserToken
from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.accounts.tokens import (
    MAX_TOKEN_LENGTH,
    LiveToken,
    UserTokenService,
    UserTokenVerifier,
)
from stethoscope.db import Database
from tests.conftest import PASSWORD

NOW = datetime.datetime(2026, 12, 7, 7, 0, tzinfo=datetime.UTC)


def _no_audit(action, **event):
    pass


@pytest.fixture
def made(engine):
    """A staff user "nurse" with a token: (token, token id, user id)."""
    with Session(engine) as session, session.begin():
        user = UserService(session, Passwords("cheapest")).create(
            "nurse", PASSWORD, "staff"
        )
        token, row = UserTokenService(session, _no_audit, clock=lambda: NOW).create(
            user, "console:test", expires_days=1
        )
        return token, row.id, user.id


def verifier(engine, now=NOW) -> UserTokenVerifier:
    return UserTokenVerifier(Database(engine), clock=lambda: now)


def change(engine, statement) -> None:
    with Session(engine) as session, session.begin():
        session.execute(statement)


def test_a_live_token_is_its_user_as_they_are_now(engine, made):
    token, token_id, user_id = made
    change(engine, update(User).where(User.id == user_id).values(role=Role.ADMIN))

    with Session(engine) as session:
        live = verifier(engine).lookup(session, token, writing=False)
        # Columns, not objects: nothing loaded into the session.
        assert not session.identity_map

    assert live == LiveToken(token_id, user_id, "nurse", Role.ADMIN)
    assert isinstance(live.role, Role)


@pytest.mark.parametrize(
    ("why", "statement"),
    [
        ("revoked", update(UserToken).values(revoked_at=NOW, revoked_by="boss")),
        ("disabled", update(User).values(disabled=True)),
    ],
)
def test_a_revoked_token_or_disabled_user_is_refused(engine, made, why, statement):
    token, _, _ = made
    change(engine, statement)

    with Session(engine) as session:
        assert verifier(engine).lookup(session, token, writing=False) is None


def test_a_token_is_refused_from_the_moment_it_expires(engine, made):
    token, _, _ = made
    expires = NOW + datetime.timedelta(days=1)

    with Session(engine) as session:
        just_before = expires - datetime.timedelta(microseconds=1)
        assert verifier(engine, just_before).lookup(session, token, writing=False)
        assert verifier(engine, expires).lookup(session, token, writing=False) is None


@pytest.mark.parametrize(
    "token",
    ["stu_unknown", "stg_not-a-user-token", "stu_" + "x" * MAX_TOKEN_LENGTH],
)
def test_anything_else_is_refused(engine, made, token):
    with Session(engine) as session:
        assert verifier(engine).lookup(session, token, writing=False) is None


@pytest.mark.parametrize("writing", [False, True])
def test_use_is_written_once_a_minute(engine, made, writing):
    token, token_id, _ = made
    later = NOW + datetime.timedelta(seconds=59)

    def last_used() -> datetime.datetime | None:
        with Session(engine) as session:
            return session.get(UserToken, token_id).last_used_at

    for moment in (NOW, later):
        with Session(engine) as session, session.begin():
            verifier(engine, moment).lookup(session, token, writing=writing)
        assert last_used() == NOW

    with Session(engine) as session, session.begin():
        verifier(engine, later + datetime.timedelta(seconds=2)).lookup(
            session, token, writing=writing
        )
    assert last_used() == later + datetime.timedelta(seconds=2)
