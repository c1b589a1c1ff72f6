"""Staff accounts, login sessions and login throttling."""

import datetime
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..audit.services import no_audit
from ..bearer import hash_token
from ..db import utcnow
from .models import AuthSession, Role, User
from .passwords import Passwords

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
# C0 and C1 control characters (NUL included) and DEL.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class AccountError(ValueError):
    """A change to an account that cannot be made; ``field`` says which input."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UserService:
    """Creates and changes staff accounts. Each change ends the user's sessions
    where it should (password, role, disabling), so it takes effect at once,
    and is recorded with ``audit(action, target=, details=)`` in the
    caller's transaction; a refused change records nothing."""

    def __init__(
        self,
        session: Session,
        passwords: Passwords,
        *,
        audit: Callable[..., object] = no_audit,
    ):
        self.session = session
        self.passwords = passwords
        self.audit = audit

    def get(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def require(self, username: str) -> User:
        user = self.get(username)
        if user is None:
            raise AccountError("username", f"no user {username!r}")
        return user

    def list(self) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.username)))

    def create(self, username: str, password: str, role: Role | str) -> User:
        """Add a user; raises AccountError for a taken or bad name or password."""
        username = username.strip().lower()
        if not USERNAME.fullmatch(username):
            raise AccountError(
                "username",
                "2 to 64 characters: lower-case letters, digits, '.', '_', '-'",
            )
        if self.get(username) is not None:
            raise AccountError("username", f"{username!r} is taken")
        role = self._role(role)
        self._check_password(password)
        user = User(
            username=username, password_hash=self.passwords.hash(password), role=role
        )
        self.session.add(user)
        self.session.flush()
        self.audit("user.create", target=user.username, details={"role": role.value})
        return user

    def set_password(self, user: User, password: str) -> None:
        """Replace ``user``'s password and end their sessions."""
        self._check_password(password)
        user.password_hash = self.passwords.hash(password)
        user.password_changed_at = utcnow()
        self._end_sessions(user)
        # The password itself, or any hash of it, never goes in the log.
        self.audit("user.password", target=user.username)

    def set_role(self, user: User, role: Role | str) -> bool:
        """Give ``user`` ``role`` and end their sessions; False, and nothing
        done, when it is their role already."""
        role = self._role(role)
        old = user.role
        if role == old:
            return False
        if old == Role.ADMIN:
            self._keep_an_admin(user)
        user.role = role
        self._end_sessions(user)
        self.audit(
            "user.role",
            target=user.username,
            details={"from": old.value, "to": role.value},
        )
        return True

    def set_disabled(self, user: User, disabled: bool) -> bool:
        """Disable ``user`` (ending their sessions) or enable them again;
        False, and nothing done, when they are so already."""
        if disabled == user.disabled:
            return False
        if disabled and user.role == Role.ADMIN:
            self._keep_an_admin(user)
        user.disabled = disabled
        if disabled:
            self._end_sessions(user)
        self.audit("user.disable" if disabled else "user.enable", target=user.username)
        return True

    def authenticate(self, username: str, password: str) -> User | None:
        """The user with this password, if enabled; takes as long either way."""
        user = self.get(username.strip().lower())
        valid = self.passwords.verify(user.password_hash if user else None, password)
        if not valid or user is None or user.disabled:
            return None
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash(password)
        user.last_login_at = utcnow()
        return user

    def end_sessions(self, user: User) -> None:
        """Log ``user`` out everywhere."""
        self._end_sessions(user)
        self.audit("user.sessions_end", target=user.username)

    def _keep_an_admin(self, user: User) -> None:
        # Lock the enabled admins' rows: two admins demoting each other at
        # once must not both see the other one still there (PostgreSQL;
        # SQLite's writers are serialised already).
        admins = self.session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN, User.disabled.is_(False))
            .with_for_update()
        ).all()
        if not user.disabled and len(admins) <= 1:
            raise AccountError("role", "the last enabled admin cannot be removed")

    def _end_sessions(self, user: User) -> None:
        self.session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))

    def _check_password(self, password: str) -> None:
        problem = Passwords.problem(password)
        if problem:
            raise AccountError("password", problem)

    @staticmethod
    def _role(role: Role | str) -> Role:
        try:
            return Role(role)
        except ValueError:
            names = ", ".join(r.value for r in Role)
            raise AccountError("role", f"must be one of {names}") from None


def write_while_reading(database, session: Session, statement, *, writing: bool):
    """Execute ``statement`` (a small bookkeeping UPDATE) for a request.

    ``writing`` says that ``session`` is a write transaction (an unsafe
    request): the statement runs in it. A read transaction must not write
    (SQLite, see stethoscope.db), so for a reading request it runs in a
    short transaction of its own; a writing one must not do that, as it
    already holds SQLite's write lock and would wait for itself.
    """
    if writing:
        session.execute(statement)
        return
    with database.session(write=True) as own, own.begin():
        own.execute(statement)


def touch(
    database,
    session: Session,
    row,
    attribute: str,
    now: datetime.datetime,
    every: datetime.timedelta,
    *,
    writing: bool,
) -> None:
    """Set the row's ``attribute`` (a login session's ``last_seen_at``, a
    token's ``last_used_at``) to ``now`` if it was set over ``every`` ago,
    or never: a client polling every few seconds must not turn each of its
    reads into a write. ``writing``: see ``write_while_reading``."""
    touch_column(
        database,
        session,
        type(row),
        row.id,
        attribute,
        getattr(row, attribute),
        now,
        every,
        writing=writing,
    )


def touch_column(
    database,
    session: Session,
    model,
    row_id,
    attribute: str,
    last: datetime.datetime | None,
    now: datetime.datetime,
    every: datetime.timedelta,
    *,
    writing: bool,
) -> None:
    """``touch`` for a row read as columns, not loaded as an object: its
    ``model``, id and the ``attribute``'s value ``last``."""
    if last is not None and now - last <= every:
        return
    write_while_reading(
        database,
        session,
        update(model).where(model.id == row_id).values({attribute: now}),
        writing=writing,
    )


@dataclass(frozen=True)
class SessionLimits:
    idle: datetime.timedelta
    lifetime: datetime.timedelta
    # How stale last_seen_at may get before we write it again.
    touch_every: datetime.timedelta = datetime.timedelta(minutes=1)


class SessionService:
    """Server-side login sessions; the cookie carries only a random token."""

    def __init__(self, database, limits: SessionLimits, clock=utcnow):
        self.database = database
        self.limits = limits
        self._clock = clock

    def start(
        self, session: Session, user: User, ip: str | None, user_agent: str | None
    ) -> str:
        """Open a session for ``user`` (in ``session``'s transaction): its token."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session.add(
            AuthSession(
                id=hash_token(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                ip=ip,
                user_agent=(user_agent or "")[:200] or None,
            )
        )
        return token

    def end(self, session: Session, token: str) -> None:
        session.execute(delete(AuthSession).where(AuthSession.id == hash_token(token)))

    def lookup(self, session: Session, token: str, *, writing: bool) -> User | None:
        """The enabled user of a live session, refreshing its idle timer
        (``writing``: see ``write_while_reading``)."""
        now = self._clock()
        row = session.execute(
            select(AuthSession, User)
            .join(User, AuthSession.user_id == User.id)
            .where(AuthSession.id == hash_token(token))
        ).first()
        if row is None:
            return None
        auth, user = row
        if (
            user.disabled
            or now - auth.last_seen_at > self.limits.idle
            or now - auth.created_at > self.limits.lifetime
        ):
            return None
        touch(
            self.database,
            session,
            auth,
            "last_seen_at",
            now,
            self.limits.touch_every,
            writing=writing,
        )
        return user

    def purge_expired(self, session: Session) -> int:
        now = self._clock()
        result = session.execute(
            delete(AuthSession).where(
                (AuthSession.last_seen_at < now - self.limits.idle)
                | (AuthSession.created_at < now - self.limits.lifetime)
            )
        )
        return result.rowcount


@dataclass(frozen=True)
class ThrottleLimits:
    per_user: int
    per_ip: int
    window_s: int


class LoginThrottle:
    """Refuses logins after repeated failures, per username and per address.

    Each attempt is *reserved* before its password is hashed, atomically
    (ops/ratelimit.py): checking first and counting the failure after the
    slow hash let simultaneous guesses all pass the check. So at most
    ``per_user`` passwords are ever tested for a name in a window, however
    many arrive at once. A reservation stands as the failure it is; a
    refused attempt takes nothing; a success clears the name's failures and
    gives its address back the attempt (an office shares one address).
    """

    def __init__(self, limiter, limits: ThrottleLimits):
        self.limiter = limiter
        self.limits = limits

    def reserve(self, username: str, ip: str | None) -> int:
        """Take one attempt for ``username`` (and ``ip``): 0 when granted,
        else the seconds to wait, and nothing is taken."""
        keys = [(self._user_key(username), self.limits.per_user)]
        if ip:
            keys.append((self._ip_key(ip), self.limits.per_ip))
        waits = []
        for key, limit in keys:
            count, ttl = self.limiter.hit(key, self.limits.window_s)
            if count > limit:
                waits.append(ttl)
        if waits:
            for key, _ in keys:
                self.limiter.give_back(key)
            return max(waits)
        return 0

    def cancel(self, username: str, ip: str | None) -> None:
        """Give back a reservation whose password was never judged (the
        database failed): it was no failed login."""
        self.limiter.give_back(self._user_key(username))
        if ip:
            self.limiter.give_back(self._ip_key(ip))

    def succeeded(self, username: str, ip: str | None) -> None:
        """The reserved attempt succeeded: the name's failures are forgiven
        and the address gets its attempt back."""
        self.limiter.clear(self._user_key(username))
        if ip:
            self.limiter.give_back(self._ip_key(ip))

    @staticmethod
    def _ip_key(ip: str) -> str:
        return f"login-ip:{ip}"

    @staticmethod
    def _user_key(username: str) -> str:
        return (
            "login-user:"
            + hashlib.sha256(username.strip().lower().encode()).hexdigest()
        )


def loggable(username: str) -> str:
    """``username`` as the audit log may keep it: control characters escaped
    (PostgreSQL refuses a NUL in text, and a newline would forge a line)."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", username)


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: the session ``token`` of ``user``, or
    ``retry_after`` seconds to wait (throttled), or neither (refused)."""

    user: User | None = None
    token: str | None = None
    retry_after: int = 0


class LoginService:
    """Logs staff in and out: throttles the attempts, checks the password,
    opens or ends the login session, and records each attempt and logout
    with ``audit(action, target=, actor=, actor_type=)``.

    A failed or throttled attempt is recorded too, in the caller's
    transaction: the caller answers it without raising, so that the event
    commits although the login fails.
    """

    def __init__(
        self,
        session: Session,
        users: UserService,
        sessions: SessionService,
        throttle: LoginThrottle,
        *,
        audit: Callable[..., object],
    ):
        self.session = session
        self.users = users
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit

    def log_in(
        self, username: str, password: str, ip: str | None, user_agent: str | None
    ) -> Login:
        """Open a session for ``username`` if ``password`` is theirs and the
        throttle lets the attempt be made."""
        # Reserved before the password is hashed (LoginThrottle): simultaneous
        # guesses cannot all pass a check made before any of them is counted.
        retry_after = self.throttle.reserve(username, ip)
        if retry_after:
            self._refused("login.throttled", username)
            return Login(retry_after=retry_after)
        # A name no account can have is a failed login without a look-up (a
        # NUL in it would make PostgreSQL refuse the query).
        try:
            user = (
                self.users.authenticate(username, password)
                if USERNAME.fullmatch(username)
                else None
            )
        except BaseException:
            self.throttle.cancel(username, ip)
            raise
        if user is None:
            # The reservation stands: it is this failure's count.
            self._refused("login.failure", username)
            return Login()
        self.throttle.succeeded(username, ip)
        # Logins are rare: a good moment to forget sessions that have expired.
        self.sessions.purge_expired(self.session)
        token = self.sessions.start(self.session, user, ip, user_agent)
        self.audit(
            "login.success",
            target=user.username,
            actor=user.username,
            actor_type="user",
        )
        return Login(user=user, token=token)

    def log_out(self, token: str | None, username: str | None) -> None:
        """End the login session of ``token`` (if any) of ``username``."""
        if token:
            self.sessions.end(self.session, token)
        self.audit("logout", target=username)

    def _refused(self, action: str, username: str) -> None:
        logged = loggable(username)
        self.audit(action, target=logged, actor=logged or "-")
