"""The staff's pages as served: the house now (/), one badge and its day,
the day's CSV; names and history as the roles say (the live parts:
tests/browser/test_board.py)."""

import csv
import datetime
import io
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.registry.models import Badge, Beacon, Gateway, Room
from tests.conftest import login
from tests.functional.test_locating import (
    IN_KITCHEN,
    IN_LOUNGE,
    LONDON,
    activate,
    add_readings,
    live,
)
from tests.support.models import add_site, register_model

ROOMS = ["kitchen", "lounge", "hall"]
HTML = {"Accept": "text/html"}


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


@pytest.fixture
def app_settings(app_settings):
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def house(engine, app_settings):
    """Site rose (London), rooms on two floors, an active model; b1 (Mrs B.)
    in the kitchen now, b2 (Mr C.) in the lounge, b-away not heard."""
    model_dir = app_settings["stethoscope.model_dir"]
    add_site(engine, "rose", ROOMS, timezone=LONDON)
    with Session(engine) as session, session.begin():
        session.get(Room, "kitchen").floor = 0
        session.get(Room, "lounge").floor = 0
        session.get(Room, "hall").floor = 1
        session.add_all(
            [
                Gateway(id="pi-1", site_id="rose", name="Hall Pi"),
                Badge(id="b1", site_id="rose", wearer="Mrs B."),
                Badge(id="b2", site_id="rose", wearer="Mr C."),
                Badge(id="b-away", site_id="rose", wearer="Miss D."),
                *(Beacon(id=f"b-{room}", room_id=room) for room in ROOMS),
            ]
        )
    activate(engine, model_dir, register_model(engine, model_dir, "rose", ROOMS))
    live(engine, "b1", IN_KITCHEN)
    live(engine, "b2", IN_LOUNGE)


@pytest.fixture
def staff(make_app, create_user):
    app = make_app()
    login(app, *create_user("nurse", "staff"))
    return app


def cards(page) -> dict[str, str]:
    """Each room card's text, by room id."""
    html = page.text
    out = {}
    for tag in Elements(html).find("article"):
        room_id = tag["data-room-id"]
        start = html.index(f'data-room-id="{room_id}"')
        out[room_id] = html[start : html.index("</article>", start)]
    return out


# ---- the house now -----------------------------------------------------------


def test_board_for_a_viewer_shows_badge_ids_not_names(testapp, house):
    page = testapp.get("/", headers=HTML, status=200)

    rooms = cards(page)
    assert 'data-badge-id="b1"' in rooms["kitchen"]
    assert 'data-badge-id="b2"' in rooms["lounge"]
    assert "Mrs B." not in page.text and "Miss D." not in page.text
    assert "Ground floor" in page.text and "Floor 1" in page.text
    # Apart: the badge not heard lately.
    unheard = page.text[page.text.index('id="unheard-list"') :]
    assert 'data-badge-id="b-away"' in unheard
    # Confidence in words, not colour alone; since when, on the site's clock.
    assert "high (" in rooms["kitchen"] or "medium (" in rooms["kitchen"]
    assert "Europe/London" in page.text
    (board,) = Elements(page.text).find("div", id="board")
    assert board["data-occupancy-url"] == "http://localhost/sites/rose/occupancy"
    assert board["data-timezone"] == LONDON


def test_board_for_staff_names_the_wearers(staff, house):
    page = staff.get("/", headers=HTML)

    rooms = cards(page)
    assert "Mrs B." in rooms["kitchen"] and "Mr C." in rooms["lounge"]
    assert "Miss D." in page.text


def test_board_status_strip(testapp, house):
    page = testapp.get("/", headers=HTML)

    assert 'data-field="rate">12 / min' in page.text
    assert "v1 forest" in page.text
    assert "93.0 % accurate" in page.text
    assert "/readings" in page.text  # the raw readings are one click away


def test_board_search_filters_on_the_server_too(staff, house):
    page = staff.get("/", {"q": "mrs b"}, headers=HTML)

    shown = [
        tag["data-badge-id"]
        for tag in Elements(page.text).find("li")
        if "data-badge-id" in tag and "hidden" not in tag
    ]
    assert shown == ["b1"]


def test_board_without_a_model_says_so(testapp, engine):
    add_site(engine, "oak", ["study"], timezone="UTC")

    page = testapp.get("/", headers=HTML, status=200)

    assert "Locations unavailable" in page.text
    assert 'data-room-id="study"' in page.text


def test_board_without_a_site(testapp):
    page = testapp.get("/", headers=HTML, status=200)

    assert "No site yet" in page.text


def test_board_picks_a_site(testapp, house, engine):
    add_site(engine, "oak", ["study"], timezone="UTC")

    page = testapp.get("/", {"site": "oak"}, headers=HTML)
    assert 'data-room-id="study"' in page.text
    assert Elements(page.text).find("select", id="site-picker")
    testapp.get("/", {"site": "nowhere"}, headers=HTML, status=404)


def test_no_inline_script_or_style_and_assets_versioned(staff, house):
    for url in ("/", "/badges/b1", "/badges/b1/history"):
        elements = Elements(staff.get(url, headers=HTML).text)
        scripts = elements.find("script")
        assert scripts and all(script.get("src") for script in scripts)
        assert all(not body.strip() for body in elements.script_bodies)
        assert not elements.find("style")
        for tag, attrs in elements.tags:
            assert "style" not in attrs, tag
            assert not [name for name in attrs if name.startswith("on")], tag
        for src in [s["src"] for s in scripts] + [
            link["href"] for link in elements.find("link")
        ]:
            assert "?v=" in src, src
            assert staff.get(src, status=200).body


# ---- one badge ---------------------------------------------------------------


def test_badge_page_for_staff(staff, house):
    page = staff.get("/badges/b1", headers=HTML, status=200)

    assert "Mrs B." in page.text
    assert "In <strong>Kitchen</strong>" in page.text
    assert len(Elements(page.text).find("meter")) == 2 * len(ROOMS)
    (canvas,) = Elements(page.text).find("canvas", id="badge-chart")
    assert canvas["data-badge-id"] == "b1"
    assert canvas["data-feed-url"] == "http://localhost/rssi_readings"
    assert int(canvas["data-after"]) >= 0
    legend = {
        tag["data-beacon-id"]
        for tag in Elements(page.text).find("li")
        if "data-beacon-id" in tag
    }
    assert legend == {f"b-{room}" for room in ROOMS}
    assert "/badges/b1/history" in page.text


def test_badge_page_for_a_viewer_hides_name_and_history(testapp, house):
    page = testapp.get("/badges/b1", headers=HTML, status=200)

    assert "Mrs B." not in page.text
    assert "shown to staff only" in page.text
    assert "/badges/b1/history" not in page.text


def test_the_now_panel_alone_is_the_page_s(staff, testapp, house, engine):
    page = Elements(staff.get("/badges/b1", headers=HTML).text)
    audited = audit_events(engine)
    now = staff.get("/badges/b1/now", headers=HTML, status=200)

    # Fetched every few seconds while the page is open: it reads no day,
    # so it logs nothing (the page's stays are logged once, on load).
    assert audit_events(engine) == audited

    assert now.content_type == "text/html"
    assert "<html" not in now.text
    (panel,) = Elements(now.text).find("section", id="now")
    (in_page,) = page.find("section", id="now")
    assert panel == in_page
    assert panel["data-now-url"] == "http://localhost/badges/b1/now"
    assert "In <strong>Kitchen</strong>" in now.text
    assert len(Elements(now.text).find("meter")) == 2 * len(ROOMS)
    # Where it is now needs no more than the page: a viewer sees it too.
    assert (
        "In <strong>Kitchen</strong>"
        in testapp.get("/badges/b1/now", headers=HTML).text
    )
    assert "No location now" in staff.get("/badges/b-away/now", headers=HTML).text
    staff.get("/badges/nobody/now", headers=HTML, status=404)


def audit_events(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def test_badge_not_heard_lately_still_has_a_page(staff, house):
    page = staff.get("/badges/b-away", headers=HTML, status=200)
    assert "No location now" in page.text


def test_unknown_badge_is_404(staff, house):
    staff.get("/badges/nobody", headers=HTML, status=404)


# ---- a day ---------------------------------------------------------------------


@pytest.fixture
def yesterday(engine, house):
    """b1's yesterday (London): kitchen 06:00-06:30 (night), lounge 10:00-11:00."""
    zone = ZoneInfo(LONDON)
    day = datetime.datetime.now(zone).date() - datetime.timedelta(days=1)

    def at(hour, minute):
        return datetime.datetime.combine(day, datetime.time(hour, minute), zone)

    readings = []
    for start, end, beacons in (
        (at(6, 0), at(6, 30), IN_KITCHEN),
        (at(10, 0), at(11, 0), IN_LOUNGE),
    ):
        moment = start
        while moment <= end:
            readings.append((moment.astimezone(datetime.UTC), beacons))
            moment += datetime.timedelta(seconds=30)
    add_readings(engine, "b1", readings)
    return day


def test_history_page(staff, yesterday):
    page = staff.get(
        "/badges/b1/history", {"date": yesterday.isoformat()}, headers=HTML, status=200
    )
    stays = staff.get("/badges/b1/stays", {"date": yesterday.isoformat()}).json

    rows = [t for t in Elements(page.text).find("tr") if "data-from" in t]
    assert [row["data-from"] for row in rows] == [stay["from"] for stay in stays]
    assert [row["data-room-id"] for row in rows] == ["kitchen", "lounge"]
    assert rows[0].get("class") == "at-night" and rows[1].get("class") is None
    assert "06:00:00" in page.text  # the site's clock, 24-hour
    rects = [r for r in Elements(page.text).find("rect") if "data-room-id" in r]
    assert len(rects) == 2
    assert Elements(page.text).find("rect", **{"class": "night"})
    (picker,) = Elements(page.text).find("input", id="day")
    assert picker["value"] == yesterday.isoformat()
    assert "1 h 00 min" in page.text  # the lounge's total


def test_history_is_refused_to_viewers(testapp, yesterday):
    testapp.get("/badges/b1/history", headers=HTML, status=403)
    testapp.get("/badges/b1/history.csv", status=403)


def test_history_bad_date_is_400(staff, house):
    page = staff.get(
        "/badges/b1/history", {"date": "2026-13-01"}, headers=HTML, status=400
    )
    assert "date" in page.text


def test_history_csv(staff, yesterday, engine):
    response = staff.get(
        "/badges/b1/history.csv", {"date": yesterday.isoformat()}, status=200
    )

    assert response.content_type == "text/csv"
    assert f"b1-{yesterday.isoformat()}.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["room_id"] for row in rows] == ["kitchen", "lounge"]
    assert rows[1]["room_name"] == "Lounge"
    assert int(rows[1]["seconds"]) == 3600


def test_history_csv_cells_are_formula_safe(staff, yesterday, engine):
    with Session(engine) as session, session.begin():
        session.get(Room, "lounge").name = "=HYPERLINK(1)"

    response = staff.get("/badges/b1/history.csv", {"date": yesterday.isoformat()})

    assert "'=HYPERLINK(1)" in response.text


def test_board_status_strip_counts_gateways_heard(testapp, house):
    testapp.post_json(
        "/rssi_readings",
        {"badge_id": "b1", "pi_id": "pi-1", "beacons": {"b-kitchen": -50}},
        status=201,
    )

    page = testapp.get("/", headers=HTML)

    assert 'data-field="gateways">1 up' in page.text
