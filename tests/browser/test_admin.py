"""The admin pages in a real browser: users and gateway tokens, end to end."""

import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase"


def post_reading(live_server, token: str, badge_id: str) -> int:
    """POST a reading of gateway gw-1 with ``token``; return the status."""
    request = urllib.request.Request(
        live_server.url + "/rssi_readings",
        data=json.dumps(
            {"badge_id": badge_id, "pi_id": "gw-1", "beacons": {"a": -50}}
        ).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def log_in(page, username, password):
    # Not logged in: sent to the login form, and back to the page after it.
    page.goto("/admin/users")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fadmin%2Fusers$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()


def test_admin_adds_a_user_and_a_gateway_token(
    live_server, page, console_errors, create_user
):
    log_in(page, *create_user("boss", "admin"))
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()

    form = page.locator("#add-user")
    form.get_by_label("Username").fill("nurse")
    form.get_by_label("Role").select_option("staff")
    form.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    form.get_by_label("Password again").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Add user").click()

    expect(page.locator(".flashes")).to_have_text("Added nurse (staff).")
    row = page.locator("#users tbody tr[data-username=nurse]")
    expect(row.locator("td")).to_have_text(
        ["nurse", "staff", "enabled", "never", re.compile(r" UTC$")]
    )
    # A refusal comes back next to its field.
    form = page.locator("#add-user")
    form.get_by_label("Username").fill("nurse")
    form.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    form.get_by_label("Password again").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(page.locator("#username-error")).to_have_text("'nurse' is taken")
    # Chromium logs the 400 of the refused form as a failed load: expected
    # here, and the only console message allowed.
    assert console_errors.messages == [
        "console: Failed to load resource: the server responded with a status "
        f"of 400 (Bad Request) ({live_server.url}/admin/users)"
    ]
    console_errors.messages.clear()

    page.get_by_role("navigation", name="Admin").get_by_role(
        "link", name="Gateway tokens"
    ).click()
    page.get_by_label("Create a token for gateway").fill("gw-1")
    page.get_by_role("button", name="Create token").click()

    token = page.locator("#new-token").text_content()
    assert token.startswith("stg_")
    expect(page.locator("#token-header")).to_have_text(f"Authorization: Bearer {token}")
    assert post_reading(live_server, token, "B1") == 201

    page.get_by_role("link", name="Back to gateway tokens").click()
    expect(page.locator("#live-tokens tbody tr")).to_have_count(1)
    assert token not in page.content()
    page.get_by_role("button", name=re.compile(r"^Revoke token stg_")).click()
    expect(page.locator(".flashes")).to_contain_text("Revoked token")
    expect(page.locator("#revoked-tokens tbody tr")).to_have_count(1)
    assert post_reading(live_server, token, "B2") == 401

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit tbody tr td:nth-child(5)")).to_have_text(
        ["token.revoke", "token.create", "user.create", "login.success"]
    )
    # Let the last loads (the favicon) finish before the page is closed.
    page.wait_for_load_state("networkidle")
    assert not console_errors, console_errors.messages
