"""The staff pages in a real browser: each loads with no console error and
no failed request, fits a 1,024 and a 768 px wide window (wide tables
scroll inside their card, never the page), and is saved as a screenshot.

Screenshots go to var/screenshots/pages/ (STETHOSCOPE_SCREENSHOTS to put
them elsewhere), one PNG a page and width, for a person to look at.
"""

import datetime
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from stethoscope.registry.models import Badge, Beacon, Gateway
from tests.browser.conftest import browser_login
from tests.support.models import add_site, register_model

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(
    os.environ.get("STETHOSCOPE_SCREENSHOTS", "var/screenshots/pages")
).resolve()
# Enough rooms that the models' confusion matrix is wider than its card.
ROOMS = [f"room-{n:02d}" for n in range(1, 15)]
WIDTHS = (1024, 768)
# The age of a reading that just arrived: seconds, never hours.
JUST_ARRIVED = re.compile(r"^(just now|\d+ s ago)$")
ANY_TEXT = re.compile(r".+")
# Printable ASCII, so a valid badge id; markup if anything parsed it as HTML.
HOSTILE_BADGE = "<img/src=x/onerror=alert(1)>"
PAGES = [
    "/readings",
    "/readings?badge=b-1&since=2020-01-01+00:00",
    "/gateways",
    "/beacons",
    "/badges",
    "/alerts",
    "/admin",
    "/admin/audit",
    "/admin/house",
    "/admin/models",
]


@pytest.fixture
def app_settings(app_settings):
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def house(engine, make_app, live_server):
    """A site of 14 rooms with a model, a placed badge with a wearer, a
    beacon per room, and readings: live ones and one uploaded late."""
    add_site(engine, "rose", ROOMS, timezone="Europe/London")
    model_id = register_model(
        engine, make_app.settings["stethoscope.model_dir"], "rose", ROOMS
    )
    with Session(engine) as session, session.begin():
        session.add(Badge(id="b-1", site_id="rose", wearer="Mrs B., room 4"))
        session.add(Gateway(id="gw-1", site_id="rose", name="Hall"))
        session.add_all(Beacon(id=f"b-{room}", room_id=room) for room in ROOMS)
    for n in range(3):
        live_server.post_reading(
            badge_id="b-1", pi_id="gw-1", beacons={"b-room-01": -40 - n, "x": -70}
        )
    late = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    live_server.post_reading(
        badge_id="b-2",
        pi_id="gw-1",
        beacons={"b-room-02": -55},
        observed_at=late.isoformat(),
    )
    return model_id


def log_in(page, username: str, role: str, create_user) -> None:
    """Log in; then leave the board the login lands on (its polls are not
    these pages' requests)."""
    browser_login(page, *create_user(username, role))
    page.goto("about:blank")


def expect_refused(console_errors, status: int) -> None:
    """Chromium logs a page answered 4xx as a failed load: expected here."""
    expected = f"status of {status}"
    console_errors.messages[:] = [
        message for message in console_errors.messages if expected not in message
    ]


def check(page, path: str, width: int, failures: list[str]) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    response = page.goto(path)
    assert response.status == (400 if "=bad" in path else 200), path
    expect(page.locator("h1")).to_be_visible()
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - "
        "document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{path} at {width} px: the page scrolls by {overflow} px"
    name = path.strip("/").replace("/", "-").replace("?", "-").split("&")[0] or "root"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
    assert not failures, failures


def watch(page) -> list[str]:
    """Requests that failed or were answered 4xx/5xx (the page's own GET of
    a refused filter aside)."""
    failures: list[str] = []
    page.on("requestfailed", lambda request: failures.append(f"failed {request.url}"))
    page.on(
        "response",
        lambda response: (
            failures.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.request.resource_type != "document"
            else None
        ),
    )
    return failures


def test_every_page_loads_cleanly_and_fits(page, create_user, house, console_errors):
    log_in(page, "boss", "admin", create_user)
    failures = watch(page)
    for width in WIDTHS:
        for path in PAGES:
            check(page, path, width, failures)
        check(page, f"/admin/models/{house}", width, failures)
        check(page, "/readings?since=bad", width, failures)
        expect_refused(console_errors, 400)
    assert not console_errors, console_errors.messages


def test_the_readings_page_marks_imported_readings_and_keeps_the_filter(
    page, create_user, house, console_errors
):
    log_in(page, "viewer", "viewer", create_user)
    page.goto("/readings")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Readings")).to_have_attribute(
        "aria-current", "page"
    )
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    rows = page.locator("#readings tbody tr")
    expect(rows).to_have_count(4)
    # Newest observed first: the late upload is last, and marked.
    expect(rows.last).to_have_class("imported")
    expect(rows.last).to_contain_text("Imported")
    expect(rows.first.locator(".age")).to_have_text(JUST_ARRIVED)

    page.get_by_label("Badge").fill("b-2")
    page.get_by_label("Observed from").fill("yesterday")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("since:")
    expect(page.get_by_label("Badge")).to_have_value("b-2")
    expect(page.get_by_label("Observed from")).to_have_value("yesterday")
    expect(page.get_by_label("Observed from")).to_have_attribute("aria-invalid", "true")
    expect_refused(console_errors, 400)


def test_the_readings_page_starts_empty_and_shows_ids_as_text(
    page, live_server, create_user, console_errors
):
    log_in(page, "viewer", "viewer", create_user)
    page.goto("/readings")
    expect(page.locator("#readings tbody tr.empty")).to_contain_text("No readings yet")

    reading = live_server.post_reading(
        badge_id=HOSTILE_BADGE, pi_id="gw-2", beacons={"a": -70, "b": -52}
    )
    page.reload()

    row = page.locator("#readings tbody tr")
    expect(row).to_have_count(1)
    # Shown as text, never parsed: strongest beacon first.
    expect(row.locator("td")).to_have_text(
        [ANY_TEXT, HOSTILE_BADGE, "gw-2", "b -52, a -70", str(reading["id"])]
    )
    assert row.locator("img").count() == 0
    expect(row.locator("time")).to_have_attribute("datetime", reading["observed_at"])
    expect(row.locator(".age")).to_have_text(JUST_ARRIVED)
    assert not console_errors, console_errors.messages


def test_a_refused_room_is_shown_at_its_form(page, create_user, house, console_errors):
    log_in(page, "boss", "admin", create_user)
    page.set_viewport_size({"width": 1024, "height": 700})
    page.goto("/admin/house")
    form = page.locator("#add-room")
    form.get_by_label("Id").fill("room-01")
    form.get_by_label("Name").fill("Again")
    form.get_by_role("button", name="Add room").click()
    error = page.locator("#add-room [role=alert], #add-room .field-error").first
    expect(error).to_be_visible()
    expect(error).to_be_in_viewport()
    expect_refused(console_errors, 409)
