"""Login throttling holds under concurrency, across processes.

Each attempt is reserved before its password is hashed, so simultaneous
wrong passwords test at most the limit however many arrive at once (the
check used to come before the hash and the count after it: 30 at once
tested 12 against a limit of 5).
"""

import http.client
import logging
import re
import threading
import urllib.parse

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.audit.models import AuditEvent
from tests.conftest import login
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_for

ATTEMPTS = 30
LIMIT = 5
PASSWORD = "correct horse battery staple"


@pytest.fixture
def db_url(postgres_url):
    return postgres_url


def create_user_hashed_for_real(engine, username="victim"):
    # The real argon2 cost: the hash is what simultaneous guesses race.
    with Session(engine) as session, session.begin():
        UserService(session, Passwords("default")).create(username, PASSWORD, "viewer")
    return username


class Browser:
    """One client of a real server: its own cookie and CSRF token."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {**(headers or {}), "Cookie": self.cookie}
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            text = response.read().decode()
            cookie = response.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            return response.status, text
        finally:
            connection.close()

    def open_login(self) -> str:
        status, page = self.request("GET", "/login", headers={"Accept": "text/html"})
        assert status == 200
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def post_login(self, token: str, username: str, password: str) -> int:
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf_token": token}
        )
        status, _ = self.request(
            "POST",
            "/login",
            form,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        return status


def test_simultaneous_wrong_passwords_never_test_more_than_the_limit(
    make_app, engine, redis_url
):
    settings = {
        "stethoscope.redis_url": redis_url,
        "stethoscope.login.max_failures_per_user": str(LIMIT),
        # The address's own limit is not what this test is about.
        "stethoscope.login.max_failures_per_ip": "1000",
    }
    # Two servers sharing the database and Redis, as two processes would.
    servers = [ThreadedServer(make_app.wsgi(**settings), threads=8) for _ in "ab"]
    try:
        username = create_user_hashed_for_real(engine)
        browsers = [Browser(servers[n % 2].port) for n in range(ATTEMPTS)]
        tokens = [browser.open_login() for browser in browsers]
        start = threading.Barrier(ATTEMPTS)
        statuses = []

        def guess(browser, token):
            start.wait()
            statuses.append(browser.post_login(token, username, "wrong"))

        threads = [
            threading.Thread(target=guess, args=pair)
            for pair in zip(browsers, tokens, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for server in servers:
            server.stop()

    assert sorted(statuses) == [401] * LIMIT + [429] * (ATTEMPTS - LIMIT)
    with Session(engine) as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert actions.count("login.failure") == LIMIT


def test_the_right_password_works_once_the_window_is_over(
    make_app, create_user, redis_url, redis_server
):
    app = make_app(
        **{
            "stethoscope.redis_url": redis_url,
            "stethoscope.login.max_failures_per_user": "2",
            "stethoscope.login.window_seconds": "1",
        }
    )
    username, password = create_user()
    client = redis_server.client()
    try:
        for _ in range(2):
            login(app, username, "wrong", status=401)
        login(app, username, password, status=429)
        keys = client.keys("stethoscope:ratelimit:login-user:*")
        assert keys
        wait_for(lambda: not client.exists(*keys), "the window to end", timeout=10)
    finally:
        client.close()
    login(app, username, password, status=303)


def test_a_success_gives_the_address_its_attempt_back(make_app, create_user):
    app = make_app(**{"stethoscope.login.max_failures_per_ip": "2"})
    username, password = create_user()
    # Many people behind one address log in: successes use up nothing.
    for _ in range(5):
        login(app, username, password, status=303)
        app.reset()
    login(app, username, "wrong", status=401)
    login(app, username, password, status=303)


def test_redis_down_fails_open_with_one_log_line(
    make_app, create_user, tmp_path, caplog
):
    app = make_app(
        **{
            "stethoscope.redis_url": f"unix://{tmp_path}/no-redis.sock",
            "stethoscope.redis.retry_interval_ms": "60000",
            "stethoscope.login.max_failures_per_user": "2",
        }
    )
    username, password = create_user()
    with caplog.at_level(logging.ERROR, logger="stethoscope.ops.ratelimit"):
        login(app, username, "wrong", status=401)
        # Counted in this process meanwhile; the right password still works.
        login(app, username, password, status=303)
    outage = [r for r in caplog.records if "Redis unavailable for rate" in r.message]
    assert len(outage) == 1
