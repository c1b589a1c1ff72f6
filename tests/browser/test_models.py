"""The models page in a real browser: see the versions, activate one."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import browser_login
from tests.support.models import add_site, register_model

pytestmark = pytest.mark.browser

ROOMS = ["kitchen", "lounge"]


@pytest.fixture
def app_settings(app_settings):
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def versions(engine, make_app):
    add_site(engine, "rose", ROOMS, timezone="Europe/London")
    model_dir = make_app.settings["stethoscope.model_dir"]
    return [
        register_model(engine, model_dir, "rose", ROOMS, accuracy=0.9),
        register_model(engine, model_dir, "rose", ROOMS, accuracy=0.93),
    ]


def test_an_admin_activates_a_version(page, live_server, create_user, versions):
    browser_login(page, *create_user("boss", "admin"))
    page.goto("/admin/users")
    page.get_by_role("navigation", name="Admin").get_by_role(
        "link", name="Models"
    ).click()

    expect(page.get_by_role("heading", name="Models", level=1)).to_be_visible()
    rows = page.locator("#versions-rose tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator('[data-field="active"]')).to_contain_text("None")

    page.get_by_role("button", name="Activate model 2 of rose").click()

    expect(
        page.get_by_role("status").filter(has_text="Activated model 2 of rose")
    ).to_be_visible()
    active = page.locator("#versions-rose tr.active-model")
    expect(active).to_have_attribute("data-model-id", str(versions[1]))
    expect(active.locator('[data-field="state"]')).to_have_text("Active")
    expect(page.locator('[data-field="active"]')).to_contain_text("Model 2")
    expect(page.locator('[data-field="serving"]')).to_contain_text("Model 2, loaded")

    # The version's own page: the heat-map is styled by the stylesheet alone.
    page.get_by_role("link", name="2", exact=True).click()
    expect(page.locator("#confusion td.diagonal").first).to_have_class(
        "num heat-10 diagonal"
    )
