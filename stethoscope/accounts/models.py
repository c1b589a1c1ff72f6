"""Staff accounts, their login sessions and their API tokens."""

import datetime
import enum

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, utcnow


class Role(enum.StrEnum):
    """What a member of staff may do; each role includes the ones before it."""

    VIEWER = "viewer"  # the dashboard and where badges are now
    STAFF = "staff"  # + location history
    ADMIN = "admin"  # + registry, training runs, models, users, tokens

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: "Role") -> bool:
        return self.rank >= other.rank


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="role",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda roles: [role.value for role in roles],
        )
    )
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime.datetime | None]

    sessions: Mapped[list["AuthSession"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    tokens: Mapped[list["UserToken"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class AuthSession(Base):
    """A logged-in browser. The cookie holds a random token; we keep its hash.

    Keeping sessions server-side lets logout, a password change or disabling
    an account end them at once, which a signed cookie alone cannot.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime.datetime]
    last_seen_at: Mapped[datetime.datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship(back_populates="sessions")


class UserToken(Base):
    """An API token: another system of the home acting as this user.

    Only the token's sha256 is stored. The token carries no role of its
    own: each request reads the user's, so a change of role counts at once,
    and a disabled user's tokens are refused until the user is enabled.
    """

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, to tell tokens apart in lists.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime.datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime.datetime | None]
    # Written at most once a minute (UserTokenVerifier), not per request.
    last_used_at: Mapped[datetime.datetime | None]
    revoked_at: Mapped[datetime.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(back_populates="tokens")

    def state(self, now: datetime.datetime) -> str:
        """``live``, ``expired`` or ``revoked``, as lists show it."""
        return token_state(self.revoked_at, self.expires_at, now)


def token_state(
    revoked_at: datetime.datetime | None,
    expires_at: datetime.datetime | None,
    now: datetime.datetime,
) -> str:
    """A user token's state from its columns (``UserToken.state``; the
    verifier reads columns, not objects)."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "live"
