"""client_ip, identities and their principals, and the policy's decisions."""

import ipaddress

import pytest
from pyramid.authorization import Authenticated, Everyone
from pyramid.request import Request
from pyramid.testing import DummyRequest

from stethoscope.accounts.models import Role
from stethoscope.accounts.tokens import LiveToken
from stethoscope.config import networks
from stethoscope.registry.tokens import TokenGrant
from stethoscope.security import (
    ADMIN,
    INGEST,
    LOGGED_IN,
    SESSION_TOKEN_KEY,
    VIEW,
    VIEW_HISTORY,
    GatewayIdentity,
    Root,
    SecurityPolicy,
    StaffIdentity,
    UserTokenIdentity,
    client_ip,
    in_networks,
)


def request_from(remote, forwarded=None, proxies=""):
    """A request as the WSGI server gives it: client_ip reads its environ
    (the ingest fast path, which has no request, reads the same)."""
    environ = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    request = Request(environ)
    request.registry = {"stethoscope.trusted_proxies": networks(proxies)}
    return request


class TestClientIp:
    def test_without_trusted_proxies_the_header_is_ignored(self):
        assert client_ip(request_from("192.0.2.1", "10.0.0.1")) == "192.0.2.1"

    def test_from_an_untrusted_peer_the_header_is_ignored(self):
        request = request_from("192.0.2.1", "10.0.0.1", proxies="127.0.0.1")
        assert client_ip(request) == "192.0.2.1"

    @pytest.mark.parametrize(
        "forwarded, expected",
        [
            ("198.51.100.7", "198.51.100.7"),
            (" 198.51.100.7 ", "198.51.100.7"),
            # The rightmost address our proxies did not write is the client;
            # what is left of it the client wrote itself.
            ("10.9.9.9, 198.51.100.7", "198.51.100.7"),
            ("10.9.9.9, 198.51.100.7, 127.0.0.2", "198.51.100.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:DB8:0::1", "2001:db8::1"),
            # Nothing usable: the proxy's own address.
            ("", "127.0.0.1"),
            ("127.0.0.2", "127.0.0.1"),
            ("not-an-address", "127.0.0.1"),
            ("10.9.9.9, garbage", "127.0.0.1"),
            ("198.51.100.7:4711", "127.0.0.1"),
        ],
    )
    def test_from_a_trusted_proxy(self, forwarded, expected):
        request = request_from("127.0.0.1", forwarded, proxies="127.0.0.0/30 ::1")
        assert client_ip(request) == expected

    def test_no_header_from_a_proxy_is_the_proxy(self):
        assert client_ip(request_from("::1", proxies="::1")) == "::1"

    def test_in_networks(self):
        nets = networks("10.0.0.0/8, 2001:db8::/32")
        assert in_networks(ipaddress.ip_address("10.1.2.3"), nets)
        assert in_networks(ipaddress.ip_address("2001:db8::5"), nets)
        assert not in_networks(ipaddress.ip_address("11.0.0.1"), nets)
        assert not in_networks(None, nets)
        assert not in_networks(ipaddress.ip_address("10.1.2.3"), ())


class TestPrincipals:
    @pytest.mark.parametrize(
        "role, roles",
        [
            (Role.VIEWER, ["role:viewer"]),
            (Role.STAFF, ["role:viewer", "role:staff"]),
            (Role.ADMIN, ["role:viewer", "role:staff", "role:admin"]),
        ],
    )
    def test_staff_hold_their_role_and_those_below(self, role, roles):
        identity = StaffIdentity(7, "ann", role)
        assert identity.principals == ["user", "user:7", *roles]
        assert identity.actor == "ann"

    def test_gateway(self):
        identity = GatewayIdentity("pi-hall", 3)
        assert identity.principals == ["gateway", "gateway:pi-hall"]
        assert identity.actor == "pi-hall"


class FakeTokens:
    def __init__(self, tokens):
        self.tokens = tokens
        self.asked = []

    def verify(self, session_factory, token):
        self.asked.append(token)
        return self.tokens.get(token)

    def cached_grant(self, token):
        # As if every good token had been verified lately.
        return self.tokens.get(token)


class FakeSessions:
    def __init__(self, users):
        self.users = users

    def lookup(self, session, token, *, writing):
        return self.users.get(token)


class FakeUser:
    def __init__(self, id, username, role):
        self.id, self.username, self.role = id, username, role


class FakeUserTokens:
    def __init__(self, tokens):
        self.tokens = tokens
        self.asked = []

    def lookup(self, session, token, *, writing):
        self.asked.append(token)
        return self.tokens.get(token)


class Session(dict):
    invalidated = False

    def invalidate(self):
        self.clear()
        self.invalidated = True


def make_policy(require_token=True, allow_ips=""):
    return SecurityPolicy(
        require_token=require_token,
        allow_ips=networks(allow_ips),
        sessions=FakeSessions(
            {
                "s-viewer": FakeUser(1, "vic", Role.VIEWER),
                "s-staff": FakeUser(2, "sam", Role.STAFF),
                "s-admin": FakeUser(3, "ada", Role.ADMIN),
            }
        ),
        tokens=FakeTokens({"stg_good": TokenGrant(9, "pi-hall")}),
        user_tokens=FakeUserTokens(
            {
                "stu_viewer": LiveToken(5, 1, "vic", Role.VIEWER),
                "stu_admin": LiveToken(6, 3, "ada", Role.ADMIN),
            }
        ),
    )


def request_as(who=None, *, authorization=None, ip="192.0.2.1"):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = DummyRequest(headers=headers)
    if authorization is not None:
        # DummyRequest keeps headers apart from its environ; a real one
        # reads them from it, as the ingest fast path does.
        request.environ["HTTP_AUTHORIZATION"] = authorization
    request.db = object()
    request.client_ip = ip
    request.session = Session()
    if who is not None:
        request.environ["HTTP_COOKIE"] = "stethoscope_session=signed"
        request.session[SESSION_TOKEN_KEY] = who
    return request


class TestSecurityPolicy:
    def test_no_cookie_no_header_is_anonymous(self):
        policy = make_policy()
        request = request_as()
        assert policy.identity(request) is None
        assert policy.principals(request) == [Everyone]
        assert policy.authenticated_userid(request) is None

    def test_a_session_is_a_member_of_staff(self):
        policy = make_policy()
        request = request_as("s-staff")
        assert policy.identity(request) == StaffIdentity(2, "sam", Role.STAFF)
        assert policy.principals(request) == [
            Everyone,
            Authenticated,
            "user",
            "user:2",
            "role:viewer",
            "role:staff",
        ]
        assert policy.authenticated_userid(request) == "sam"

    def test_an_unknown_session_is_anonymous_and_dropped(self):
        policy = make_policy()
        request = request_as("s-expired")
        assert policy.identity(request) is None
        assert request.session.invalidated

    def test_a_cookie_without_our_session_is_anonymous(self):
        request = request_as()
        request.cookies = {"other": "x"}
        assert make_policy().identity(request) is None

    def test_a_bearer_token_is_a_gateway(self):
        policy = make_policy()
        request = request_as(authorization="Bearer stg_good")
        assert policy.identity(request) == GatewayIdentity("pi-hall", 9)
        assert "gateway:pi-hall" in policy.principals(request)

    def test_a_user_token_is_its_user(self):
        policy = make_policy()
        request = request_as(authorization="Bearer stu_admin")
        assert policy.identity(request) == UserTokenIdentity(3, "ada", Role.ADMIN, 6)
        assert policy.principals(request) == [
            Everyone,
            Authenticated,
            "user",
            "user:3",
            "role:viewer",
            "role:staff",
            "role:admin",
        ]
        assert policy.authenticated_userid(request) == "ada"
        # Looked up among users' tokens only, never as a gateway's.
        assert policy.tokens.asked == []
        assert policy.user_tokens.asked == ["stu_admin"]

    def test_a_gateway_token_is_never_looked_up_as_a_users(self):
        policy = make_policy()
        policy.identity(request_as(authorization="Bearer stg_good"))
        assert policy.user_tokens.asked == []

    @pytest.mark.parametrize(
        "authorization",
        [
            "Bearer stg_bad",
            "Basic stg_good",
            "stg_good",
            "Bearer",
            "Bearer   ",
            "Bearer stu_bad",
            "Basic stu_admin",
        ],
    )
    def test_a_bad_authorization_is_anonymous(self, authorization):
        assert make_policy().identity(request_as(authorization=authorization)) is None

    def test_the_header_wins_over_a_session(self):
        # A gateway never acts with a browser's rights, nor a browser with a
        # bad header with its session's.
        policy = make_policy()
        request = request_as("s-admin", authorization="Bearer stg_bad")
        assert policy.identity(request) is None

    def test_identity_is_looked_up_once_a_request(self):
        policy = make_policy()
        request = request_as(authorization="Bearer stg_good")
        policy.identity(request)
        policy.principals(request)
        policy.authenticated_userid(request)
        assert policy.tokens.asked == ["stg_good"]

    # Who holds which permission, through the root ACL.
    @pytest.mark.parametrize(
        "who, authorization, allowed",
        [
            (None, None, set()),
            ("s-viewer", None, {VIEW, LOGGED_IN}),
            ("s-staff", None, {VIEW, VIEW_HISTORY, LOGGED_IN}),
            ("s-admin", None, {VIEW, VIEW_HISTORY, ADMIN, LOGGED_IN}),
            (None, "Bearer stg_good", {INGEST}),
            # A user's token: the user's permissions, never ingest.
            (None, "Bearer stu_viewer", {VIEW, LOGGED_IN}),
            (None, "Bearer stu_admin", {VIEW, VIEW_HISTORY, ADMIN, LOGGED_IN}),
        ],
    )
    def test_permissions(self, who, authorization, allowed):
        policy = make_policy(require_token=True)
        request = request_as(who, authorization=authorization)
        root = Root(request)
        for permission in (VIEW, VIEW_HISTORY, ADMIN, INGEST, LOGGED_IN):
            assert bool(policy.permits(request, root, permission)) == (
                permission in allowed
            ), permission

    @pytest.mark.parametrize(
        "allow_ips, ip, who, authorization, permitted",
        [
            ("", "192.0.2.1", None, None, True),
            ("", "192.0.2.1", "s-viewer", None, True),
            ("10.0.0.0/8", "10.2.3.4", None, None, True),
            ("10.0.0.0/8", "192.0.2.1", None, None, False),
            ("10.0.0.0/8", None, None, None, False),
            # A token that does not verify is not "no token".
            ("", "192.0.2.1", None, "Bearer stg_bad", False),
            ("10.0.0.0/8", "192.0.2.1", None, "Bearer stg_good", True),
            # Nor is a user's token, good or bad.
            ("", "192.0.2.1", None, "Bearer stu_admin", False),
            ("", "192.0.2.1", None, "Bearer stu_bad", False),
        ],
    )
    def test_open_ingest(self, allow_ips, ip, who, authorization, permitted):
        policy = make_policy(require_token=False, allow_ips=allow_ips)
        request = request_as(who, authorization=authorization, ip=ip)
        assert bool(policy.permits(request, Root(request), INGEST)) == permitted
        # Open ingest opens nothing else.
        if who is None and authorization is None:
            assert not policy.permits(request, Root(request), VIEW)

    def test_ingest_is_closed_when_tokens_are_required(self):
        policy = make_policy(require_token=True)
        for who in (None, "s-admin"):
            request = request_as(who)
            assert not policy.permits(request, Root(request), INGEST)

    def test_remember_and_forget_set_no_headers(self):
        # Logging in and out go through the server-side session, not these.
        policy = make_policy()
        assert policy.remember(request_as(), "ann") == []
        assert policy.forget(request_as()) == []


@pytest.mark.parametrize("require_token", [False, True])
@pytest.mark.parametrize(
    ("allow_ips", "ip", "who", "authorization"),
    [
        ("", "192.0.2.1", None, None),
        ("", "192.0.2.1", "s-viewer", None),
        ("10.0.0.0/8", "10.2.3.4", None, None),
        ("10.0.0.0/8", "192.0.2.1", None, None),
        ("10.0.0.0/8", None, None, None),
        ("", "192.0.2.1", None, "Bearer stg_bad"),
        ("", "192.0.2.1", None, "Bearer stg_good"),
        ("", "192.0.2.1", None, "Basic stg_good"),
        ("10.0.0.0/8", "192.0.2.1", None, "Bearer stg_good"),
        ("", "192.0.2.1", None, "Bearer stu_admin"),
    ],
)
def test_a_grant_without_the_database_never_differs_from_permits(
    require_token, allow_ips, ip, who, authorization
):
    """The ingest fast path's question: "not sure" (None) is always
    allowed, a grant only where the policy permits, for the same gateway."""
    policy = make_policy(require_token=require_token, allow_ips=allow_ips)
    request = request_as(who, authorization=authorization, ip=ip)
    grant = policy.ingest_grant_without_database(request.environ, ip)
    permitted = bool(policy.permits(request, Root(request), INGEST))
    if grant is not None:
        assert permitted
        identity = policy.identity(request)
        expected = identity.gateway_id if identity is not None else None
        assert grant.gateway_id == expected
    if who is not None:
        assert grant is None  # a cookie: a session to look up
    elif permitted:
        assert grant is not None  # everything else is decidable here
