"""The staff's pages in a real browser, against a real server fed live by the
simulator: the demo house trained and its model active (``demo_house``),
stethoscope-simulate live posting to the server for the module's duration.

Screenshots of every page, at 1,024 and 768 px, go to var/screenshots/.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

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
# The simulator runs this many times faster than real time: stays of minutes
# become tens of seconds, so a badge changes rooms while the test watches.
SPEED = 4
# Simulated seconds the simulator runs at most (it is stopped after the module).
DURATION = 3600
# A move is a matter of the simulated walk: allow a few real minutes.
MOVE_TIMEOUT_MS = 240_000
BADGE = "demo-badge-001"


@pytest.fixture(scope="module")
def house_server(demo_house, tmp_path_factory):
    """The app on a copy of the demo house, served over HTTP, with the
    simulator posting live traffic to it until the module ends."""
    directory = tmp_path_factory.mktemp("board")
    database = directory / "house.sqlite"
    shutil.copyfile(demo_house.database, database)
    app = main(
        {},
        **{
            "sqlalchemy.url": f"sqlite:///{database}",
            "stethoscope.dedup.backend": "memory",
            "stethoscope.activity.flush_seconds": "2",
            "stethoscope.model_dir": demo_house.model_dir,
            "stethoscope.secret": "test-secret-of-at-least-thirty-two-characters",
            "stethoscope.accounts.password_profile": "cheapest",
            "stethoscope.ingest.require_token": "false",
            "stethoscope.gc_freeze": "false",
        },
    )
    server = ThreadedServer(app)
    simulator = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("stethoscope-simulate")),
            "live",
            server.url,
            "--speed",
            str(SPEED),
            "--duration",
            str(DURATION),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    yield server.url
    simulator.terminate()
    _out, errors = simulator.communicate(timeout=30)
    server.stop()
    app.registry[DATABASE].dispose()
    assert simulator.returncode in (0, -15), errors


@pytest.fixture
def problems():
    return PageProblems()


@pytest.fixture
def open_page(browser, house_server, demo_house, problems):
    """``open_page(role, width)``: a page logged in as ``role``, ``width``
    pixels wide; fails the test on console errors and failed requests."""
    contexts = []

    def open_page(role: str = "staff", width: int = 1024):
        expect.set_options(timeout=EXPECT_TIMEOUT_MS)
        context = browser.new_context(
            base_url=house_server,
            locale="en-GB",
            viewport={"width": width, "height": 900},
        )
        contexts.append(context)
        page = context.new_page()
        browser_login(page, demo_house.users[role], HOUSE_PASSWORD)
        watch(page, problems, failed_requests=True)
        return page

    yield open_page
    for context in contexts:
        context.close()
    if problems:
        pytest.fail("the page logged errors:\n" + "\n".join(problems.messages))


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
    )


def wait_for_every_badge_in_a_room(page, badges) -> None:
    page.wait_for_function(
        """(badges) => badges.every((id) => {
            const li = document.querySelector(`li[data-badge-id="${id}"]`);
            return li !== null && li.closest(".room-card") !== null;
        })""",
        arg=badges,
        timeout=60_000,
    )


def test_the_board_shows_every_badge_and_follows_a_move(open_page, demo_house):
    page = open_page("staff")
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("now")
    wait_for_every_badge_in_a_room(page, demo_house.badges)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Staff see the wearers' names.
    expect(page.locator(f'li[data-badge-id="{BADGE}"] .who-name')).to_contain_text(
        "Demo resident"
    )
    expect(page.locator('[data-field="model"]')).to_contain_text("knn")

    # Each badge's node remembers the room it started in; the very same node
    # (updated in place, never rebuilt, no reload) turns up in another room.
    page.evaluate(
        """() => {
            window.notReloaded = true;
            const placed = ".room-card li[data-badge-id]";
            for (const li of document.querySelectorAll(placed)) {
                li.startedIn = li.closest(".room-card").dataset.roomId;
            }
        }"""
    )
    moved = page.wait_for_function(
        """() => {
            const placed = ".room-card li[data-badge-id]";
            for (const li of document.querySelectorAll(placed)) {
                const room = li.closest(".room-card").dataset.roomId;
                if (li.startedIn && li.startedIn !== room) {
                    return [li.dataset.badgeId, li.startedIn, room];
                }
            }
            return null;
        }""",
        timeout=MOVE_TIMEOUT_MS,
        polling=500,
    ).json_value()
    badge_id, before, after = moved
    assert before != after
    assert page.evaluate("() => window.notReloaded") is True
    # The card's count follows.
    count = page.locator(f'[data-room-id="{after}"] [data-field="count"]')
    assert int(count.text_content()) >= 1

    # A fresh page: the status strip counts the gateways the simulator runs.
    page.reload()
    wait_for_every_badge_in_a_room(page, demo_house.badges)
    expect(page.locator('[data-field="gateways"]')).to_contain_text(
        re.compile(r"^[1-9] up")
    )
    screenshot(page, "board-1024")

    # Search filters on the client: only the badge searched for is shown.
    page.get_by_label("Find a resident or badge").fill(badge_id)
    expect(page.locator("li[data-badge-id]:visible")).to_have_count(1)
    expect(page.locator(f'li[data-badge-id="{badge_id}"]')).to_be_visible()


def wait_for_a_stay_today(page) -> None:
    """The simulator may have only just begun: wait until BADGE has a stay
    today (its readings stored and located), as the day's panels need."""

    def stays() -> list:
        response = page.request.get(f"/badges/{BADGE}/stays")
        return response.json() if response.ok else []

    wait_for(stays, f"a stay of {BADGE} today", timeout=60, interval=0.5)


def test_the_badge_chart_gains_points(open_page):
    page = open_page("staff")
    wait_for_a_stay_today(page)
    page.goto(f"/badges/{BADGE}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Demo resident")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Filled from the last minutes on load, then live.
    points = page.wait_for_function(
        "() => Number(document.getElementById('badge-chart').dataset.points || 0)",
        timeout=30_000,
    ).json_value()
    page.wait_for_function(
        "(n) => Number(document.getElementById('badge-chart').dataset.points) > n",
        arg=points,
        timeout=30_000,
    )
    # One series per beacon heard, named with its room in the legend.
    heard = page.locator("#chart-legend li.heard")
    expect(heard.first).to_be_visible()
    expect(heard.first).to_contain_text("(")
    expect(page.locator("svg.timeline")).to_be_visible()
    screenshot(page, "badge-1024")


def test_the_now_panel_follows_the_badge_without_a_reload(open_page):
    page = open_page("staff")
    page.goto(f"/badges/{BADGE}")
    page.evaluate("() => { window.notReloaded = true; }")
    where = page.locator("#now .where[data-reading-id]")
    # Whatever it said on load (where the badge was, or that it has not
    # been heard yet), the panel shows a newer reading by itself.
    first = where.get_attribute("data-reading-id") if where.count() else "0"
    page.wait_for_function(
        """(first) => {
            const where = document.querySelector("#now .where[data-reading-id]");
            return where && Number(where.dataset.readingId) > Number(first);
        }""",
        arg=first,
        timeout=30_000,
    )
    assert page.evaluate("() => window.notReloaded") is True
    expect(page.locator("#now table.probabilities meter").first).to_be_visible()
    expect(page.locator("#now h2")).to_have_count(1)


def test_the_history_timeline_agrees_with_the_stays_api(open_page):
    page = open_page("staff")
    wait_for_a_stay_today(page)
    page.goto(f"/badges/{BADGE}/history")
    expect(page.get_by_label("Date", exact=True)).to_be_visible()
    rows = page.locator("#stays tbody tr[data-from]")
    expect(rows.first).to_be_visible()
    shown = rows.evaluate_all("(rows) => rows.map((row) => row.dataset.from)")
    bars = page.locator("svg.timeline rect.stay").evaluate_all(
        "(rects) => rects.map((rect) => rect.dataset.from)"
    )
    stays = page.request.get(f"/badges/{BADGE}/stays").json()
    assert bars == shown
    # Today goes on while we look: every stay but the last is settled.
    assert [stay["from"] for stay in stays][: len(shown) - 1] == shown[:-1]
    screenshot(page, "history-1024")


def test_a_viewer_sees_badges_not_names_nor_history(open_page, demo_house):
    page = open_page("viewer")
    page.goto("/")
    wait_for_every_badge_in_a_room(page, demo_house.badges)
    expect(page.locator("#board")).not_to_contain_text("Demo resident")
    expect(page.locator(f'li[data-badge-id="{BADGE}"] .who-name')).to_have_text(BADGE)

    page.goto(f"/badges/{BADGE}")
    expect(page.get_by_text("shown to staff only")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("Demo resident")
    assert page.request.get(f"/badges/{BADGE}/history").status == 403


@pytest.mark.parametrize("width", [1024, 768])
def test_the_pages_fit_the_width(open_page, width):
    page = open_page("staff", width)
    for name, url in (
        ("board", "/"),
        ("badge", f"/badges/{BADGE}"),
        ("history", f"/badges/{BADGE}/history"),
    ):
        page.goto(url)
        expect(page.locator("#live-status, #day").first).to_be_visible()
        assert no_horizontal_overflow(page), (name, width)
        if width == 768:
            screenshot(page, f"{name}-768")
