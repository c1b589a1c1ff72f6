"""The browser harness itself: it must see what it promises to catch (on
/readings, a page that polls nothing, so only what a test does shows)."""

import pytest

pytestmark = pytest.mark.browser


def test_csp_violations_are_reported(viewer_page, console_errors):
    page = viewer_page
    page.goto("/readings")
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.inlineScriptRan = true";
                document.body.append(script);
            }"""
        )
    assert page.evaluate("() => window.inlineScriptRan") is None
    assert any("Content Security Policy" in m for m in console_errors.messages)
    console_errors.messages.clear()  # seen; do not fail the test for it


def test_failed_loads_are_reported(viewer_page, console_errors):
    page = viewer_page
    page.goto("/readings")
    with page.expect_console_message(lambda m: m.type == "error"):
        page.evaluate(
            """() => {
                const image = document.createElement("img");
                image.src = "/no-such-image.png";
                document.body.append(image);
            }"""
        )
    assert any("404" in m for m in console_errors.messages), console_errors.messages
    console_errors.messages.clear()
