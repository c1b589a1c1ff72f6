"""Alerts in a real browser, against a real server fed live by the
simulator (the demo house, its model active): a simulated gateway, then a
beacon, falls silent (``stethoscope-simulate live --control``: ``silence
ID``) and its alert opens, on /alerts and on the board; it comes back
(``restore ID``) and the alert clears, listed with when it opened and when
it cleared.

The silences that open an alert are set to 3 s (fractions of a minute),
and alerts are evaluated on every read, so an outage shows within seconds.
Neither page is left to refresh itself: /alerts is rendered once per load
and the board swaps its alerts in only every few polls, so each is reloaded,
as a person would, until what is awaited shows.

Screenshots go to var/screenshots/alerts-*.png.
"""

import datetime
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pyramid.paster import get_appsettings

from stethoscope import main
from stethoscope.singletons import DATABASE
from tests.browser.conftest import (
    EXPECT_TIMEOUT_MS,
    HOUSE_PASSWORD,
    PageProblems,
    browser_login,
    watch,
)
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SPEED = 4
# Simulated seconds the simulator runs at most (it is stopped after the module).
DURATION = 3600
SILENT_MINUTES = "0.05"
# An outage shows after the silence (3 s), the next activity flush (1 s)
# and the advertisements the simulator had already computed (~3 s); far
# more is allowed for a busy machine.
SHOWS_WITHIN_S = 60
# The demo house's landing gateway and beacon hear, and are heard by, every
# badge (the simulator's walk with seed 0 leaves neither unheard for more
# than 2 simulated seconds, half a real one): the only silences are the
# test's own.
CASES = {
    "gateway": ("gateway_silent", "pi-landing", "Gateway Landing gateway silent"),
    "beacon": ("beacon_silent", "bcn-landing", "Beacon bcn-landing (Landing)"),
}


class Simulator:
    """``stethoscope-simulate live --control`` posting to a server; its
    standard output read line by line from a thread of its own."""

    def __init__(self, url: str):
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("stethoscope-simulate")),
                "live",
                url,
                "--speed",
                str(SPEED),
                "--duration",
                str(DURATION),
                "--control",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def command(self, line: str, answer: str) -> None:
        """Send one command; return once the simulator has answered it."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        while answer not in (said := self.lines.get(timeout=10)):
            assert not said.startswith(("simulate: not a", "simulate: no ")), said

    def stop(self) -> str:
        """Stop it (SIGTERM); its standard error."""
        self.process.terminate()
        _out, errors = self.process.communicate(timeout=30)
        assert self.process.returncode in (0, -15), errors
        return errors


@pytest.fixture(scope="module")
def alerting_house(demo_house, tmp_path_factory):
    """The app on a copy of the demo house, with alerts quick to open,
    served over HTTP; the simulator posts to it, taking commands."""
    directory = tmp_path_factory.mktemp("alerts")
    database = directory / "house.sqlite"
    shutil.copyfile(demo_house.database, database)
    # The demo house's own ini, but for the copy and the alerts.
    app = main(
        {},
        **{
            **get_appsettings(demo_house.ini),
            "sqlalchemy.url": f"sqlite:///{database}",
            "stethoscope.activity.flush_seconds": "1",
            "stethoscope.alerts.interval_seconds": "0",
            "stethoscope.alerts.gateway_silent_minutes": SILENT_MINUTES,
            "stethoscope.alerts.beacon_silent_minutes": SILENT_MINUTES,
            "stethoscope.gc_freeze": "false",
        },
    )
    server = ThreadedServer(app)
    simulator = Simulator(server.url)
    yield server.url, simulator
    simulator.stop()
    server.stop()
    app.registry[DATABASE].dispose()


@pytest.fixture
def staff_page(browser, alerting_house, demo_house):
    """A page logged in as staff; fails the test on console errors and
    failed requests."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(
        base_url=alerting_house[0],
        locale="en-GB",
        viewport={"width": 1024, "height": 900},
    )
    page = context.new_page()
    browser_login(page, demo_house.users["staff"], HOUSE_PASSWORD)
    problems = PageProblems()
    watch(page, problems, failed_requests=True)
    yield page
    context.close()
    if problems:
        pytest.fail("the page logged errors:\n" + "\n".join(problems.messages))


def reload_until(page, url: str, locator, what: str) -> None:
    """Load ``url`` again and again until ``locator`` matches."""

    def shown() -> bool:
        page.goto(url)
        return locator.count() > 0

    wait_for(shown, what, timeout=SHOWS_WITHIN_S, interval=0.5)


def api_alerts(page, kind: str, subject: str) -> list[dict]:
    """Every alert of ``kind`` about ``subject``, as GET /alerts lists them."""
    response = page.request.get(
        "/alerts?site=demo&state=all", headers={"Accept": "application/json"}
    )
    assert response.ok, response.text()
    return [
        alert
        for alert in response.json()["alerts"]
        if alert["kind"] == kind and alert["subject"] == subject
    ]


def heard(page, kind: str, subject: str) -> bool:
    """Whether the server has heard the gateway or beacon ``subject``."""
    if kind == "gateway_silent":
        gateway = page.request.get(f"/registry/gateways/{subject}").json()
        return gateway["last_seen"] is not None
    beacons = page.request.get("/beacons").json()["beacons"]
    return any(b["id"] == subject and b["last_heard"] for b in beacons)


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("case", list(CASES))
def test_an_alert_opens_when_a_device_falls_silent_and_clears_when_it_returns(
    staff_page, alerting_house, case
):
    page = staff_page
    simulator = alerting_house[1]
    kind, subject, message = CASES[case]
    # Heard, and not silent now.
    wait_for(
        lambda: (
            heard(page, kind, subject)
            and all(a["cleared_at"] for a in api_alerts(page, kind, subject))
        ),
        f"{subject} heard and not silent",
        timeout=SHOWS_WITHIN_S,
    )

    simulator.command(f"silence {subject}", f"{subject} silenced")
    opened = page.locator(f'#open-alerts tr[data-kind="{kind}"]', has_text=message)
    reload_until(page, "/alerts", opened, f"the {kind} alert on /alerts")
    alert_id = opened.get_attribute("data-alert-id")
    # Opened when, and no end yet.
    expect(opened.locator("td").first.locator("time")).to_have_count(1)
    on_board = page.locator(f'#alerts li.alert[data-alert-id="{alert_id}"]')
    reload_until(page, "/", on_board, f"the {kind} alert on the board")
    expect(on_board).to_contain_text(message)
    expect(on_board.locator(".age")).to_contain_text("since ")
    screenshot(page, f"alerts-{case}-open-board")

    simulator.command(f"restore {subject}", f"{subject} restored")
    reload_until(
        page,
        "/alerts",
        page.locator(f'#cleared-alerts tr[data-alert-id="{alert_id}"]'),
        f"the {kind} alert cleared on /alerts",
    )
    cleared = page.locator(f'#cleared-alerts tr[data-alert-id="{alert_id}"]')
    expect(cleared).to_contain_text(message)
    expect(page.locator(f'#open-alerts tr[data-alert-id="{alert_id}"]')).to_have_count(
        0
    )
    opened_at, cleared_at = cleared.locator("time").evaluate_all(
        "(times) => times.map((time) => time.getAttribute('datetime'))"
    )
    screenshot(page, f"alerts-{case}-cleared")
    page.goto("/")
    expect(page.locator("#alerts")).to_be_visible()
    expect(on_board).to_have_count(0)

    # The page shows the times the API gives.
    (alert,) = [a for a in api_alerts(page, kind, subject) if a["id"] == int(alert_id)]
    shown = [datetime.datetime.fromisoformat(t) for t in (opened_at, cleared_at)]
    given = [
        datetime.datetime.fromisoformat(alert[t]) for t in ("opened_at", "cleared_at")
    ]
    assert shown == given
    assert shown[0] < shown[1]
