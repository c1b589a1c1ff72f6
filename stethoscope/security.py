"""Who may do what: one security policy for staff sessions and bearer tokens.

Every view names one of the permissions below; the root ACL says which
principals hold each. Staff are principals ``role:<role>`` (an admin is also
staff and viewer), whether they come with a session cookie or with one of
their API tokens (``Bearer stu_…``, accounts.tokens); a gateway with a valid
token (``Bearer stg_…``, registry.tokens) is ``gateway`` and
``gateway:<id>``. When ``stethoscope.ingest.require_token`` is false (the
embedded default, for gateways already in the field that send no token), a
request from an allowed address is ``ingest:open``.

Unsafe methods need the session's CSRF token, except where a user's API
token authenticates the request (``csrf_applies``).

Views with no permission of their own get ``ADMIN`` (the default permission),
so a page added without thought is closed, not open.
"""

import datetime
import functools
import ipaddress
from dataclasses import dataclass

from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import RequestLocalCache
from pyramid.session import SignedCookieSessionFactory
from zope.interface import implementer

from .accounts.models import Role
from .accounts.services import SessionLimits, SessionService
from .accounts.tokens import TOKEN_PREFIX as USER_TOKEN_PREFIX
from .accounts.tokens import UserTokenVerifier
from .db import UNSAFE_METHODS
from .permissions import ADMIN, INGEST, LOGGED_IN, VIEW, VIEW_HISTORY
from .registry.tokens import TokenCache
from .singletons import DATABASE, SESSIONS, TOKEN_CACHE, TRUSTED_PROXIES

SESSION_TOKEN_KEY = "auth"


class Root:
    __acl__ = [
        (Allow, "role:viewer", VIEW),
        (Allow, "role:staff", VIEW_HISTORY),
        (Allow, "role:admin", ADMIN),
        (Allow, "gateway", INGEST),
        (Allow, "ingest:open", INGEST),
        (Allow, "user", LOGGED_IN),
    ]

    def __init__(self, request):
        self.request = request


# Each role's principals: it and the roles it includes.
_ROLE_PRINCIPALS = {
    role: tuple(f"role:{other.value}" for other in Role if role.includes(other))
    for role in Role
}


@dataclass(frozen=True)
class StaffIdentity:
    user_id: int
    username: str
    role: Role

    @property
    def principals(self) -> list[str]:
        return ["user", f"user:{self.user_id}", *_ROLE_PRINCIPALS[self.role]]

    @property
    def actor(self) -> str:
        return self.username


@dataclass(frozen=True)
class UserTokenIdentity(StaffIdentity):
    """A user acting through one of their API tokens: the same principals
    as their session would have."""

    token_id: int


@dataclass(frozen=True)
class IngestGrant:
    """Leave to post readings: as ``gateway_id`` (a token) or as anyone (None)."""

    gateway_id: str | None


OPEN_INGEST = IngestGrant(None)


@dataclass(frozen=True)
class GatewayIdentity:
    gateway_id: str
    token_id: int

    @property
    def principals(self) -> list[str]:
        return ["gateway", f"gateway:{self.gateway_id}"]

    @property
    def actor(self) -> str:
        return self.gateway_id


# Gateways post from a handful of addresses, many times a second each.
@functools.lru_cache(maxsize=4096)
def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def in_networks(address, networks) -> bool:
    return address is not None and any(address in network for network in networks)


def client_ip(request) -> str | None:
    """The client's address (see ``client_address``)."""
    return client_address(request.environ, request.registry[TRUSTED_PROXIES])


def client_address(environ, proxies) -> str | None:
    """The client's address: X-Forwarded-For is believed only from a trusted proxy.

    Walking the header from the right, the first address that is not one of
    our proxies is the client; anything further left was written by the
    client itself and proves nothing.
    """
    remote = environ.get("REMOTE_ADDR")
    if not proxies or not in_networks(_address(remote), proxies):
        return remote
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    for item in reversed(
        [part.strip() for part in forwarded.split(",") if part.strip()]
    ):
        address = _address(item)
        if address is None:
            return remote
        if not in_networks(address, proxies):
            return str(address)
    return remote


@implementer(ISecurityPolicy)
class SecurityPolicy:
    def __init__(
        self, *, require_token: bool, allow_ips: tuple, sessions, tokens, user_tokens
    ):
        self.require_token = require_token
        self.allow_ips = allow_ips
        self.sessions = sessions
        self.tokens = tokens
        self.user_tokens = user_tokens
        self.acl = ACLHelper()
        self._identity = RequestLocalCache(self._load_identity)

    def identity(self, request):
        return self._identity.get_or_create(request)

    def known_identity(self, request):
        """The identity if this request has looked it up already, else None
        (the access log names who it was without a query of its own)."""
        return self._identity.get(request, None)

    def _load_identity(self, request):
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            # A token that does not verify is refused outright, also where
            # ingest is open: a revoked token must mean something.
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return None
            if token.startswith(USER_TOKEN_PREFIX):
                live = self.user_tokens.lookup(
                    request.db, token, writing=request.method in UNSAFE_METHODS
                )
                if live is None:
                    return None
                return UserTokenIdentity(
                    live.user_id, live.username, live.role, live.token_id
                )
            grant = self.tokens.verify(lambda: request.db, token)
            return GatewayIdentity(grant.gateway_id, grant.token_id) if grant else None
        # Only look at the session when a cookie came with the request: a
        # gateway's POST must not create or touch one.
        if "HTTP_COOKIE" not in request.environ:
            return None
        token = request.session.get(SESSION_TOKEN_KEY)
        if not token:
            return None
        user = self.sessions.lookup(
            request.db, token, writing=request.method in UNSAFE_METHODS
        )
        if user is None:
            request.session.invalidate()
            return None
        return StaffIdentity(user.id, user.username, user.role)

    def ingest_grant_without_database(
        self, environ, client_ip: str | None
    ) -> IngestGrant | None:
        """May this caller post readings, known without a query?

        For the ingest fast path, which runs before any request,
        session or transaction exists. ``None``: only the whole way can tell
        (a cookie: a session to look up; a token this process has not
        verified lately; a caller the view will refuse). Otherwise the grant,
        with the gateway a token belongs to (``None`` for open ingest). The
        answer must never differ from ``permits``: a refusal here is only
        "not sure", and the request goes the whole way.
        """
        if "HTTP_COOKIE" in environ:
            return None
        authorization = environ.get("HTTP_AUTHORIZATION")
        if authorization is None:
            if self.require_token:
                return None
            if self.allow_ips and not in_networks(_address(client_ip), self.allow_ips):
                return None
            return OPEN_INGEST
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        grant = self.tokens.cached_grant(token.strip())
        return IngestGrant(grant.gateway_id) if grant is not None else None

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity.actor if identity is not None else None

    def principals(self, request) -> list[str]:
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals.append(Authenticated)
            principals.extend(identity.principals)
        return principals

    def permits(self, request, context, permission):
        principals = self.principals(request)
        if permission == INGEST and self._open_ingest(request):
            principals.append("ingest:open")
        return self.acl.permits(context, principals, permission)

    def _open_ingest(self, request) -> bool:
        """Tokens not required, none offered, and the address allowed."""
        if self.require_token or "Authorization" in request.headers:
            return False
        if not self.allow_ips:
            return True
        return in_networks(_address(request.client_ip), self.allow_ips)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def csrf_applies(request) -> bool:
    """Must this unsafe request carry the session's CSRF token?

    CSRF is a cookie's weakness: another site's page can make a browser
    send our cookie, but not an Authorization header of its choosing (that
    needs a CORS preflight we never grant). A request authenticated by a
    user's API token uses no cookie, so it needs no CSRF token; every other
    one does. (A gateway token is refused everywhere but ingest, whose view
    asks for no CSRF token.)
    """
    if "Authorization" not in request.headers:
        return True
    return not isinstance(request.identity, UserTokenIdentity)


def includeme(config):
    settings = config.registry.settings
    # pyramid_tm would ask for the identity (a database query) above the
    # exception views: with the database down, that was a 500, not a 503.
    settings["tm.annotate_user"] = False
    config.registry[TRUSTED_PROXIES] = settings["stethoscope.trusted_proxies"]
    config.add_request_method(client_ip, "client_ip", reify=True)

    idle_s = settings["stethoscope.session.idle_minutes"] * 60
    config.set_session_factory(
        SignedCookieSessionFactory(
            settings["stethoscope.secret"],
            cookie_name="stethoscope_session",
            secure=settings["stethoscope.session.secure"],
            httponly=True,
            samesite="Lax",
            timeout=idle_s,
            reissue_time=60,
            set_on_exception=False,
        )
    )
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True, callback=csrf_applies)

    sessions = SessionService(
        config.registry[DATABASE],
        SessionLimits(
            idle=datetime.timedelta(seconds=idle_s),
            lifetime=datetime.timedelta(
                hours=settings["stethoscope.session.lifetime_hours"]
            ),
        ),
    )
    tokens = TokenCache(settings["stethoscope.ingest.token_cache_seconds"])
    config.registry[SESSIONS] = sessions
    config.registry[TOKEN_CACHE] = tokens
    config.set_security_policy(
        SecurityPolicy(
            require_token=settings["stethoscope.ingest.require_token"],
            allow_ips=settings["stethoscope.ingest.allow_ips"],
            sessions=sessions,
            tokens=tokens,
            user_tokens=UserTokenVerifier(config.registry[DATABASE]),
        )
    )
    config.set_root_factory(Root)
    config.set_default_permission(ADMIN)
