"""GatewayTokenService and TokenCache on real SQLite and PostgreSQL: a
revocation is never undone by a verification that overlapped it."""

import pytest
from sqlalchemy.orm import Session

from stethoscope.registry.tokens import GatewayTokenService, TokenCache, hash_token


@pytest.fixture
def cache():
    return TokenCache(30)


@pytest.fixture
def token(engine, cache):
    """A live token of gateway pi-1, verified (so cached) as a gateway posts."""
    with Session(engine) as session, session.begin():
        token, row = GatewayTokenService(session, cache).create("pi-1", "boss")
        token_id = row.id
    with Session(engine) as session:
        assert cache.verify(lambda: session, token) is not None
    assert cache.cached_grant(token) is not None
    return token, token_id


def test_a_verification_during_a_revocation_is_not_cached(engine, cache, token):
    """Until the revocation commits, another transaction reads the token as
    live (on PostgreSQL; on SQLite too when its snapshot is older): the
    grant it reads is answered but not kept."""
    token, token_id = token
    with Session(engine) as admin:
        admin.begin()
        GatewayTokenService(admin, cache).revoke(token_id, "boss")
        assert cache.cached_grant(token) is None
        with Session(engine) as ingest:
            grant = cache.verify(lambda: ingest, token)
        assert grant is not None  # the revocation is not committed yet
        assert cache.cached_grant(token) is None
        admin.commit()
    assert cache.cached_grant(token) is None
    with Session(engine) as ingest:
        assert cache.verify(lambda: ingest, token) is None


def test_a_grant_read_before_the_revocation_committed_is_not_cached(
    engine, cache, token
):
    """The verification's query read the token live; the revocation began
    and committed before the verification could keep the grant."""
    token, token_id = token
    cache.forget(hash_token(token))  # a miss: the verification queries

    class RevokedMeanwhile:
        def __init__(self, session):
            self.session = session

        def scalar(self, statement):
            row = self.session.scalar(statement)
            with Session(engine) as admin, admin.begin():
                GatewayTokenService(admin, cache).revoke(token_id, "boss")
            return row

    with Session(engine) as ingest:
        grant = cache.verify(lambda: RevokedMeanwhile(ingest), token)
    assert grant is not None  # what the query read
    assert cache.cached_grant(token) is None
    with Session(engine) as ingest:
        assert cache.verify(lambda: ingest, token) is None


def test_a_revocation_rolled_back_lets_the_token_be_cached_again(engine, cache, token):
    token, token_id = token
    with Session(engine) as admin:
        admin.begin()
        GatewayTokenService(admin, cache).revoke(token_id, "boss")
        admin.rollback()
    with Session(engine) as ingest:
        assert cache.verify(lambda: ingest, token) is not None
    assert cache.cached_grant(token) is not None


def test_a_savepoint_ending_is_not_the_revocation_ending(engine, cache, token):
    token, token_id = token
    with Session(engine) as admin:
        admin.begin()
        GatewayTokenService(admin, cache).revoke(token_id, "boss")
        with admin.begin_nested():
            pass
        with Session(engine) as ingest:
            cache.verify(lambda: ingest, token)
        assert cache.cached_grant(token) is None
        admin.commit()
    assert cache.cached_grant(token) is None


def test_creating_and_revoking_are_recorded_once(engine, cache):
    """By the prefix, never the token; revoking again records nothing."""
    events = []

    def audit(action, **event):
        events.append((action, event))

    with Session(engine) as session, session.begin():
        service = GatewayTokenService(session, cache, audit=audit)
        token, row = service.create("pi-1", "boss")
        service.revoke(row.id, "boss")
        assert service.revoke(row.id, "boss") == (row, False)
        details = {"token_id": row.id, "prefix": row.prefix}
        assert token.startswith(row.prefix) and token != row.prefix
    assert events == [
        ("token.create", {"target": "pi-1", "details": details}),
        ("token.revoke", {"target": "pi-1", "details": details}),
    ]
