"""The live recent-readings page in a real browser."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Printable ASCII, so a valid badge id; markup if anything parsed it as HTML.
HOSTILE_BADGE = "<img/src=x/onerror=alert(1)>"
ANY_TEXT = re.compile(r".+")


def test_new_readings_appear_without_reloading(
    live_server, viewer_page, console_errors
):
    page = viewer_page
    first = live_server.post_reading(badge_id="b-1", pi_id="gw-1", beacons={"a": -41})

    page.goto("/")
    rows = page.locator("#readings tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", str(first["id"]))
    expect(rows.first.locator("td")).to_have_text(
        [str(first["id"]), ANY_TEXT, "b-1", "gw-1", "a -41"]
    )
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Survives only as long as this very document does.
    page.evaluate("() => { window.notReloaded = true; }")
    loads = []
    page.on("load", lambda _: loads.append(1))

    second = live_server.post_reading(
        badge_id=HOSTILE_BADGE, pi_id="gw-2", beacons={"a": -70, "b": -52}
    )

    new_row = page.locator(f'#readings tbody tr[data-id="{second["id"]}"]')
    expect(new_row).to_be_visible()
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-id", str(second["id"]))
    # Shown as text, never parsed: strongest beacon first, as the server does.
    expect(new_row.locator("td")).to_have_text(
        [str(second["id"]), ANY_TEXT, HOSTILE_BADGE, "gw-2", "b -52, a -70"]
    )
    assert new_row.locator("img").count() == 0
    expect(page.locator("#readings-since-load")).to_have_text("1")
    assert page.evaluate("() => window.notReloaded") is True
    assert loads == []

    # Times are shown in the browser's words, not as raw ISO-8601.
    time = new_row.locator("time")
    expect(time).to_have_attribute("datetime", second["observed_at"])
    expect(time).not_to_have_text(second["observed_at"])

    canvas = page.locator("canvas#readings-chart")
    expect(canvas).to_be_visible()
    assert page.evaluate("() => typeof SmoothieChart") == "function"
    # Smoothie sizes the canvas to its box (responsive mode) when it draws.
    assert page.evaluate(
        "() => document.getElementById('readings-chart').width"
    ) == pytest.approx(canvas.bounding_box()["width"], abs=1)

    assert not console_errors, console_errors.messages


def test_empty_page_fills_in_when_the_first_reading_arrives(
    live_server, viewer_page, console_errors
):
    page = viewer_page
    page.goto("/")
    expect(page.locator("#readings tbody tr.empty")).to_contain_text("No readings yet")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    reading = live_server.post_reading(badge_id="b-9", pi_id="gw-1", beacons={"c": -60})

    expect(page.locator("#readings tbody tr")).to_have_count(1)
    expect(page.locator("#readings tbody tr").first).to_have_attribute(
        "data-id", str(reading["id"])
    )
    assert not console_errors, console_errors.messages
