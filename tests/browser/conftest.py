"""Browser tests: the app behind a real HTTP server, driven by headless Chromium.

The app is the one ``make_app`` builds, on a fresh SQLite database, served by
waitress on a free port of 127.0.0.1 in a background thread. The browser is
Debian's Chromium (/usr/bin/chromium, ``apt-get install chromium``) driven
by Playwright; Playwright's own browser downloads are never used.

Pages load under the app's own Content-Security-Policy (no inline script or
style), and a test fails on any console error or uncaught exception in the
page, which is where CSP violations and failed loads show. Pages need a
login: ``viewer_page`` is a page logged in as a viewer through the form.
"""

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.servers import ThreadedServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Long enough for a couple of 2-s polls on a slow CI machine.
EXPECT_TIMEOUT_MS = 10_000


@pytest.fixture
def db_url(sqlite_url):
    """Browser tests run on SQLite only: the browser is what they test."""
    return sqlite_url


@dataclass
class LiveServer:
    url: str

    def post_json(self, path: str, payload) -> tuple[int, dict]:
        """POST ``payload`` as JSON over HTTP; return the status and JSON body."""
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def post_reading(self, **reading) -> dict:
        """Store a reading through the API as a gateway would; return it."""
        status, body = self.post_json("/rssi_readings", reading)
        assert status == 201, body
        return body


@pytest.fixture
def live_server(make_app):
    """The app served over HTTP by waitress on a free port of 127.0.0.1."""
    server = ThreadedServer(make_app.wsgi())
    yield LiveServer(server.url)
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclass
class PageProblems:
    """Console errors and uncaught exceptions seen in a page."""

    messages: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.messages)


@pytest.fixture
def console_errors():
    return PageProblems()


def watch(page, problems: PageProblems, *, failed_requests: bool = False) -> None:
    """Collect ``page``'s console errors and uncaught exceptions (and, with
    ``failed_requests``, requests that failed or were answered 4xx/5xx)."""

    def on_console(message):
        if message.type == "error":
            where = message.location.get("url")
            problems.messages.append(f"console: {message.text} ({where})")

    def on_page_error(error):
        problems.messages.append(f"uncaught: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    if failed_requests:
        page.on(
            "requestfailed",
            # A poll cut short by leaving the page is not a failure.
            lambda request: (
                "ERR_ABORTED" not in (request.failure or "")
                and problems.messages.append(
                    f"request failed: {request.method} {request.url} {request.failure}"
                )
            ),
        )
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and problems.messages.append(
                    f"response {response.status}: "
                    f"{response.request.method} {response.url}"
                )
            ),
        )


@pytest.fixture
def page(browser, live_server, console_errors):
    """A fresh browser page on the live server; fails the test on console errors.

    ``page.goto("/")`` is relative to the live server.
    """
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    watch(page, console_errors)
    yield page
    context.close()
    if console_errors:
        pytest.fail("the page logged errors:\n" + "\n".join(console_errors.messages))


def browser_login(page, username: str, password: str) -> None:
    """Log ``page`` in through the login form, as a person would."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.fixture
def viewer_page(page, create_user):
    browser_login(page, *create_user("viewer", "viewer"))
    return page


# ---- the demo house, trained, with the simulator live ------------------------

HOUSE_INI = """\
[app:main]
use = egg:stethoscope
sqlalchemy.url = sqlite:///{database}
stethoscope.secret = test-secret-of-at-least-thirty-two-characters
stethoscope.accounts.password_profile = cheapest
stethoscope.dedup.backend = memory
stethoscope.model_dir = {models}
stethoscope.ingest.require_token = false
"""
HOUSE_PASSWORD = "correct horse battery staple"


@dataclass
class DemoHouse:
    """The simulator's demo house in a SQLite file, trained, with users."""

    database: str
    ini: str
    model_dir: str
    badges: list[str]
    users: dict[str, str]  # role -> username


def _script(main, argv: list[str]) -> str:
    """Run a console script's ``main`` in this process; its standard output."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    assert status in (0, None), (argv, out.getvalue())
    return out.getvalue()


@pytest.fixture(scope="session")
def demo_house(sqlite_template, tmp_path_factory) -> DemoHouse:
    """The demo house (stethoscope-simulate setup), two simulated hours of
    labelled readings (simulate csv, stethoscope-import), a kNN model trained
    and activated (stethoscope-train, stethoscope-models), a viewer and a
    member of staff. Built once a session; ``house_copy`` copies it per use.
    """
    import shutil

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from stethoscope.accounts.passwords import Passwords
    from stethoscope.accounts.services import UserService
    from stethoscope.scripts import labelled_import
    from stethoscope.scripts import models as models_script
    from stethoscope.scripts import simulate as simulate_script
    from stethoscope.scripts import train as train_script

    directory = tmp_path_factory.mktemp("demo-house")
    database = directory / "house.sqlite"
    shutil.copyfile(sqlite_template, database)
    ini = directory / "house.ini"
    models = directory / "models"
    ini.write_text(HOUSE_INI.format(database=database, models=models))
    _script(simulate_script.main, ["setup", str(ini)])
    labelled = directory / "labelled.csv"
    _script(
        simulate_script.main,
        ["csv", str(labelled), "--days", str(2 / 24), "--seed", "1"],
    )
    _script(labelled_import.main, [str(ini), str(labelled), "--site", "demo"])
    trained = json.loads(
        _script(train_script.main, [str(ini), "--algorithm", "knn", "--json"])
    )
    _script(
        models_script.main, [str(ini), "activate", str(trained["model_version_id"])]
    )
    engine = create_engine(f"sqlite:///{database}")
    with Session(engine) as session, session.begin():
        users = UserService(session, Passwords("cheapest"))
        users.create("viewer", HOUSE_PASSWORD, "viewer")
        users.create("nurse", HOUSE_PASSWORD, "staff")
    engine.dispose()
    return DemoHouse(
        database=str(database),
        ini=str(ini),
        model_dir=str(models),
        badges=[f"demo-badge-{n:03d}" for n in range(1, 7)],
        users={"viewer": "viewer", "staff": "nurse"},
    )
