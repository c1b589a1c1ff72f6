"""Users' API tokens: the home's other systems acting as a user.

A token is sent as ``Authorization: Bearer stu_…`` and acts with its user's
role, as that user's login session would: the same principals, no CSRF
token (no cookie is involved). Only its sha256 is kept (stethoscope.bearer).

Unlike gateway tokens, user tokens are not cached: each request reads the
token and its user in one indexed query, as a login session does, so that
a revocation, an expiry, a change of role or a disabled user counts at once
in every server process. That query is a statement built once, executed
through the session's connection for the few columns the identity needs
(``LiveToken``), no ORM objects: building and loading them through the
ORM was a quarter of a location request's CPU (docs/benchmarks.md
"Locating speed").
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, contains_eager

from ..bearer import hash_token, new_token
from ..db import utcnow
from .models import Role, User, UserToken, token_state
from .services import AccountError, touch_column

TOKEN_PREFIX = "stu_"
# Tokens are 4 + 43 characters; anything much longer is not one of ours and
# is not worth hashing.
MAX_TOKEN_LENGTH = 128
MAX_EXPIRY_DAYS = 3650


class UserTokenService:
    """Creates, lists and revokes users' API tokens, recording each change
    with ``audit(action, target=, details=)`` in the caller's transaction.

    A token is returned once, by ``create``; nothing can show it again.
    """

    def __init__(self, session: Session, audit: Callable, clock=utcnow):
        self.session = session
        self.audit = audit
        self._clock = clock

    def create(
        self, user: User, actor: str, *, expires_days: int | None = None
    ) -> tuple[str, UserToken]:
        """A new token for ``user``, good for ``expires_days`` (None: until
        revoked). Refused for a disabled user: it could not be used."""
        if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise AccountError(
                "expires", f"a whole number of days from 1 to {MAX_EXPIRY_DAYS}"
            )
        if user.disabled:
            raise AccountError("username", f"{user.username} is disabled")
        now = self._clock()
        minted = new_token(TOKEN_PREFIX)
        row = UserToken(
            user=user,
            token_hash=minted.token_hash,
            prefix=minted.prefix,
            created_at=now,
            created_by=actor,
            expires_at=(
                now + datetime.timedelta(days=expires_days) if expires_days else None
            ),
        )
        self.session.add(row)
        self.session.flush()
        self.audit(
            "user_token.create",
            target=user.username,
            details={**self._details(row), "role": user.role.value},
        )
        return minted.token, row

    def list(self, user: User | None = None) -> list[UserToken]:
        """Every token (of ``user``), revoked and expired ones included."""
        query = (
            select(UserToken)
            .join(UserToken.user)
            .options(contains_eager(UserToken.user))
            .order_by(User.username, UserToken.id)
        )
        if user is not None:
            query = query.where(UserToken.user_id == user.id)
        return list(self.session.scalars(query))

    def revoke(
        self, token_id: int, actor: str, *, user: User | None = None
    ) -> tuple[UserToken, bool]:
        """Revoke a token (one of ``user``'s, when given); also say whether
        it was unrevoked until now. Takes effect when the transaction commits."""
        row = self.session.get(UserToken, token_id)
        if row is None or (user is not None and row.user_id != user.id):
            raise AccountError("token_id", f"no user token {token_id}")
        if row.revoked_at is not None:
            return row, False
        row.revoked_at = self._clock()
        row.revoked_by = actor
        self.audit(
            "user_token.revoke", target=row.user.username, details=self._details(row)
        )
        return row, True

    @staticmethod
    def _details(row: UserToken) -> dict:
        # The prefix, never the token: it tells tokens apart and proves nothing.
        return {
            "token_id": row.id,
            "prefix": row.prefix,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        }


@dataclass(frozen=True, slots=True)
class LiveToken:
    """A token that verified, with its user as they are now."""

    token_id: int
    user_id: int
    username: str
    role: Role


# Only a live token of an enabled user; expiry is compared with the
# verifier's clock. Built once: a statement built per request cost more
# than running it.
_LIVE_TOKEN = (
    select(
        UserToken.id,
        UserToken.expires_at,
        UserToken.last_used_at,
        User.id,
        User.username,
        User.role,
    )
    .join(User, User.id == UserToken.user_id)
    .where(
        UserToken.token_hash == bindparam("token_hash"),
        UserToken.revoked_at.is_(None),
        User.disabled.is_(False),
    )
)


class UserTokenVerifier:
    """Checks a bearer token for the security policy, on every request.

    ``last_used_at`` is written at most every ``touch_every``, as sessions'
    ``last_seen_at`` are: a system polling every few seconds must not turn
    each of its reads into a write.
    """

    def __init__(
        self,
        database,
        clock=utcnow,
        touch_every: datetime.timedelta = datetime.timedelta(minutes=1),
    ):
        self.database = database
        self._clock = clock
        self.touch_every = touch_every

    def lookup(
        self, session: Session, token: str, *, writing: bool
    ) -> LiveToken | None:
        """The live token and its enabled user; None when it is unknown,
        revoked or expired, or its user is disabled. ``writing``: see
        ``accounts.services.write_while_reading``."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        found = (
            session.connection()
            .execute(_LIVE_TOKEN, {"token_hash": hash_token(token)})
            .first()
        )
        if found is None:
            return None
        token_id, expires_at, last_used_at, user_id, username, role = found
        now = self._clock()
        if token_state(None, expires_at, now) != "live":
            return None
        touch_column(
            self.database,
            session,
            UserToken,
            token_id,
            "last_used_at",
            last_used_at,
            now,
            self.touch_every,
            writing=writing,
        )
        return LiveToken(token_id, user_id, username, role)
