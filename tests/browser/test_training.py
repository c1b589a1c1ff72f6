"""The live training page in a real browser: start, watch the count grow, end."""

import datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from stethoscope.registry.models import Badge, Room, Site
from tests.browser.conftest import browser_login

pytestmark = pytest.mark.browser


@pytest.fixture
def house(engine):
    with Session(engine) as session, session.begin():
        session.add(Site(id="home", name="Home", timezone="Pacific/Auckland"))
        session.add(Room(id="kitchen", site_id="home", name="Kitchen"))
        session.add(Badge(id="b-walk", last_seen=datetime.datetime.now(datetime.UTC)))


def test_a_run_counts_readings_live(page, live_server, create_user, house):
    browser_login(page, *create_user("boss", "admin"))
    page.goto("/admin/training")

    page.get_by_label("Room").select_option("kitchen")
    page.get_by_role("checkbox", name="b-walk").check()
    page.get_by_role("button", name="Start").click()

    expect(page.get_by_role("status").filter(has_text="Started 1 run")).to_be_visible()
    row = page.locator("#open-runs tr[data-run-id]")
    expect(row).to_have_count(1)
    expect(row.locator('[data-field="readings"]')).to_have_text("0")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    live_server.post_reading(
        badge_id="b-walk", pi_id="pi-1", beacons={"b-kitchen": -58, "b-hall": -80}
    )
    expect(row.locator('[data-field="readings"]')).to_have_text("1")
    expect(row.locator('[data-field="beacons"]')).to_have_text("2")
    expect(row.locator('[data-field="state"]')).to_have_text("Receiving")
    expect(row.locator('[data-field="since"]')).to_contain_text("s ago")

    page.get_by_role("button", name="End run").click()
    expect(page.get_by_text("1 readings")).to_be_visible()
    expect(page.locator("#open-runs tr[data-run-id]")).to_have_count(0)
