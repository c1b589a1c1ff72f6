"""Users' API tokens: the home's other systems acting as a user.

A token is sent as ``Authorization: Bearer stu_…`` and acts with its user's
role, as that user's login session would: the same principals, no CSRF
token (no cookie is involved). Only its sha256 is kept (stethoscope.bearer).

Unlike gateway tokens, user tokens are not cached: each request reads the
token and its user in one indexed query, as a login session does, so that
a revocation, an expiry, a change of role or a disabled user counts at once
in every server process. Their callers (a nurse-call system, a care-record
system) read locations now and then, not hundreds of readings a second.
"""

import datetime
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from ..bearer import hash_token, new_token
from ..db import utcnow
from .models import User, UserToken
from .services import AccountError, touch

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
    ) -> UserToken | None:
        """The live token, with its enabled ``user`` loaded; None when it is
        unknown, revoked or expired, or its user is disabled. ``writing``:
        see ``accounts.services.write_while_reading``."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        row = session.scalar(
            select(UserToken)
            .join(UserToken.user)
            .options(contains_eager(UserToken.user))
            .where(
                UserToken.token_hash == hash_token(token),
                UserToken.revoked_at.is_(None),
            )
        )
        now = self._clock()
        if row is None or row.user.disabled or row.state(now) != "live":
            return None
        touch(
            self.database,
            session,
            row,
            "last_used_at",
            now,
            self.touch_every,
            writing=writing,
        )
        return row
