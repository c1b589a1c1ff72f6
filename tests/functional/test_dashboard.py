"""The dashboard's recent-readings page, as served (the live part: tests/browser)."""

import datetime
from html.parser import HTMLParser

import pytest

from stethoscope.dashboard.views import RECENT_ROWS


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and each script's body."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_bodies: list[str] = []
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.script_bodies.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_bodies[-1] += data

    def find(self, tag, **attrs):
        return [
            found
            for name, found in self.tags
            if name == tag and all(found.get(k) == v for k, v in attrs.items())
        ]


def post(testapp, badge_id="b-1", pi_id="gw-1", beacons=None, **extra):
    payload = {"badge_id": badge_id, "pi_id": pi_id, "beacons": beacons or {"a": -30}}
    return testapp.post_json("/rssi_readings", {**payload, **extra}, status=201).json


def table_attrs(page) -> dict:
    (table,) = Elements(page.text).find("table", id="readings")
    return table


def test_empty_state(testapp):
    page = testapp.get("/", headers={"Accept": "text/html"}, status=200)

    assert page.content_type == "text/html"
    assert "<h1>Recent readings</h1>" in page.text
    assert "No readings yet." in page.text
    assert 'data-id="' not in page.text
    table = table_attrs(page)
    assert table["data-last-id"] == "0"
    assert table["data-feed-url"] == "http://localhost/rssi_readings"
    assert table["data-max-rows"] == str(RECENT_ROWS)
    assert int(table["data-poll-ms"]) > 0
    assert int(table["data-page-limit"]) >= 1


def test_table_is_labelled(testapp):
    elements = Elements(testapp.get("/").text)

    headers = elements.find("th")
    assert len(headers) == 5
    assert all(header.get("scope") == "col" for header in headers)
    assert "<caption>" in testapp.get("/").text
    (canvas,) = elements.find("canvas", id="readings-chart")
    assert canvas["role"] == "img" and canvas["aria-label"]
    (status,) = elements.find("p", id="live-status")
    assert status["role"] == "status"


def test_navigation(testapp):
    elements = Elements(testapp.get("/").text)

    links = {tag["href"] for tag in elements.find("a")}
    assert {"http://localhost/", "http://localhost/docs"} <= links
    (current,) = [tag for tag in elements.find("a") if tag.get("aria-current")]
    assert current["href"] == "http://localhost/"


def test_shows_readings_newest_first(testapp):
    observed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    first = post(testapp, "b-1", "gw-1", {"a": -70, "b": -40, "c": -40})
    second = post(testapp, "b-2", "gw-2", {"z": -55}, observed_at=observed.isoformat())

    page = testapp.get("/")

    assert table_attrs(page)["data-last-id"] == str(second["id"])
    rows = Elements(page.text).find("tr")
    assert [row["data-id"] for row in rows if "data-id" in row] == [
        str(second["id"]),
        str(first["id"]),
    ]
    # Strongest beacon first, ties by id.
    assert "b -40, c -40, a -70" in page.text
    assert "gw-2" in page.text
    assert "No readings yet." not in page.text
    # A readable UTC time until the browser shows it in local time.
    times = Elements(page.text).find("time")
    assert times[0]["datetime"] == second["observed_at"]
    assert observed.strftime("%Y-%m-%d %H:%M:%S UTC") in page.text


def test_keeps_only_the_latest_rows(testapp):
    ids = [
        post(testapp, f"b-{n}", beacons={"a": -n - 1})["id"]
        for n in range(RECENT_ROWS + 1)
    ]

    page = testapp.get("/")

    shown = [
        row["data-id"] for row in Elements(page.text).find("tr") if "data-id" in row
    ]
    assert shown == [str(i) for i in reversed(ids[1:])]
    assert table_attrs(page)["data-last-id"] == str(ids[-1])


@pytest.mark.parametrize(
    "badge_id",
    ["<script>alert(1)</script>", '"><img/src=x/onerror=alert(1)>', "a&amp;b"],
)
def test_escapes_gateway_supplied_ids(testapp, badge_id):
    post(testapp, badge_id, pi_id="<script>gw</script>")

    page = testapp.get("/")

    assert badge_id not in page.text
    assert "<script>gw" not in page.text
    assert "&lt;script&gt;gw&lt;/script&gt;" in page.text
    escaped = (
        badge_id.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
    )
    assert escaped in page.text


def test_no_inline_script_or_style(testapp):
    # The page must work under a strict Content-Security-Policy.
    post(testapp)
    elements = Elements(testapp.get("/").text)

    scripts = elements.find("script")
    assert scripts, "the live page loads its scripts"
    assert all(script.get("src") for script in scripts)
    assert all(not body.strip() for body in elements.script_bodies)
    assert not elements.find("style")
    for tag, attrs in elements.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
        assert not str(attrs.get("href", "")).startswith("javascript:"), tag


def test_scripts_and_styles_are_served(testapp):
    elements = Elements(testapp.get("/").text)
    urls = [tag["src"] for tag in elements.find("script")] + [
        tag["href"] for tag in elements.find("link")
    ]

    assert any(url.endswith("/vendor/smoothie/smoothie.js") for url in urls)
    assert any(url.endswith("/js/readings.js") for url in urls)
    for url in urls:
        assert testapp.get(url, status=200).body
