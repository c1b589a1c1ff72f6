"""The board at / of a new install, in a real browser: a site whose model is
not trained yet. The page says so and what to do, shows the rooms and who
is heard (live, without polling an occupancy that would answer 503), and
turns into the live board by itself once an admin activates a model. The
badge page of such a site, and a 503 while a page polls, shown as passing.
"""

from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from stethoscope.registry.models import Badge, Gateway
from tests.browser.conftest import browser_login
from tests.support.models import add_site, register_model

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
ROOMS = ["kitchen", "lounge"]
# Printable ASCII, so a valid badge id; markup if anything parsed it as HTML.
HOSTILE_BADGE = "<img/src=x/onerror=alert(1)>"
# The board polls every 5 s; a reload after activation is one poll away.
BOARD_POLL_TIMEOUT_MS = 20_000


@pytest.fixture
def app_settings(app_settings):
    # A model activated on the admin page is served at the next request.
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def new_house(engine, make_app):
    """Site rose (two rooms, a gateway, badge b-1 worn by Mrs B. and b-quiet,
    never heard) with a model trained but not active; its version id."""
    add_site(engine, "rose", ROOMS, timezone="Europe/London")
    with Session(engine) as session, session.begin():
        session.add(Gateway(id="gw-1", site_id="rose", name="Hall"))
        session.add(Badge(id="b-1", site_id="rose", wearer="Mrs B."))
        session.add(Badge(id="b-quiet", site_id="rose"))
    return register_model(
        engine, make_app.settings["stethoscope.model_dir"], "rose", ROOMS
    )


def refused_responses(page) -> list[str]:
    """Requests of ``page`` answered 4xx/5xx, as they happen."""
    refused: list[str] = []
    page.on(
        "response",
        lambda response: (
            refused.append(f"{response.status} {response.url}")
            if response.status >= 400
            else None
        ),
    )
    return refused


def test_the_board_without_a_model_says_what_to_do_and_who_is_heard(
    page, live_server, create_user, new_house, console_errors
):
    refused = refused_responses(page)
    browser_login(page, *create_user("boss", "admin"))  # lands on the board

    notice = page.locator("#no-locations")
    expect(notice).to_contain_text("No active model for Rose yet")
    expect(notice).to_contain_text("record training runs and train one")
    expect(notice.get_by_role("link", name="Training")).to_have_attribute(
        "href", f"{live_server.url}/admin/training"
    )
    expect(notice.get_by_role("link", name="Models")).to_have_attribute(
        "href", f"{live_server.url}/admin/models"
    )
    expect(page.locator("[data-room-id]")).to_have_count(len(ROOMS))
    assert page.locator("#board").get_attribute("data-occupancy-url") is None
    heard = page.locator("#unknown-list li[data-badge-id]")
    expect(heard).to_have_count(0)
    expect(page.locator("#unheard-list li[data-badge-id]")).to_have_count(2)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("() => { window.notReloaded = true; }")

    live_server.post_reading(badge_id="b-1", pi_id="gw-1", beacons={"b-kitchen": -45})
    live_server.post_reading(
        badge_id=HOSTILE_BADGE, pi_id="gw-1", beacons={"b-lounge": -50}
    )

    # Heard lately, without a reload; an id is text, never markup.
    expect(heard).to_have_count(2, timeout=BOARD_POLL_TIMEOUT_MS)
    expect(page.locator('#unknown-list li[data-badge-id="b-1"]')).to_contain_text(
        "Mrs B."
    )
    expect(page.locator("#unknown-list .who-name.ident")).to_have_text(HOSTILE_BADGE)
    assert page.locator("#apart img").count() == 0
    expect(page.locator("#unheard-list li[data-badge-id]")).to_have_count(1)
    assert page.evaluate("() => window.notReloaded") is True
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "board-no-model.png"), full_page=True)

    # An admin activates the model in another tab: the board turns live.
    admin = page.context.new_page()
    admin.goto("/admin/models")
    admin.get_by_role("button", name="Activate model 1 of rose").click()
    expect(admin.get_by_role("status").filter(has_text="Activated")).to_be_visible()
    admin.close()

    expect(page.locator("#board")).to_have_attribute(
        "data-occupancy-url",
        f"{live_server.url}/sites/rose/occupancy",
        timeout=BOARD_POLL_TIMEOUT_MS,
    )
    expect(notice).to_have_count(0)
    expect(page.locator("#live-status")).to_have_text("Live: updates by itself.")
    expect(page.locator('li[data-badge-id="b-1"]')).to_have_count(1)
    expect(page.locator('[data-field="model"]')).to_contain_text("v1 forest")
    assert refused == []
    assert not console_errors, console_errors.messages


def test_the_badge_page_without_a_model_stays_live_through_a_503(
    page, live_server, create_user, new_house, console_errors
):
    refused = refused_responses(page)
    browser_login(page, *create_user("nurse", "staff"))
    live_server.post_reading(badge_id="b-1", pi_id="gw-1", beacons={"b-kitchen": -45})

    page.goto("/badges/b-1")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Mrs B.")
    expect(page.locator("#no-location")).to_contain_text("No active model for Rose yet")
    # Staff are told who trains one, with no links to pages they cannot open.
    expect(page.locator("#no-location")).to_contain_text("an admin does")
    expect(page.locator("#no-location a")).to_have_count(0)
    expect(page.get_by_text("the site has no active model yet")).to_be_visible()
    # The chart needs no model: the reading just posted is drawn.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#badge-chart")).to_have_attribute("data-points", "1")

    # The server says "not now" once (a database blip): the page says so,
    # keeps what it shows, and is live again at the next poll.
    answered = []

    def busy_once(route):
        if answered:
            route.continue_()
            return
        answered.append(route.request.url)
        route.fulfill(
            status=503,
            headers={"Retry-After": "1"},
            json={"status": 503, "error": "service_unavailable", "message": "busy"},
        )

    page.route("**/rssi_readings?*", busy_once)
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "waiting")
    expect(status).to_have_text("Not available just now: busy. Retrying…")
    expect(page.locator("#badge-chart")).to_have_attribute("data-points", "1")
    live_server.post_reading(badge_id="b-1", pi_id="gw-1", beacons={"b-kitchen": -47})
    expect(status).to_have_attribute("data-state", "live")
    expect(page.locator("#badge-chart")).to_have_attribute("data-points", "2")
    assert refused == [f"503 {answered[0]}"]
    # Chromium logs the 503 it was answered: expected here, and only that.
    assert [m for m in console_errors.messages if "status of 503" not in m] == []
    console_errors.messages.clear()

    page.goto("/badges/b-1/history")
    expect(page.locator(".notice")).to_contain_text("No active model for Rose yet")
