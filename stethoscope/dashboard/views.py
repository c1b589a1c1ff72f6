"""The staff's three pages: the house now (/), one badge (/badges/{id}) and
its day (/badges/{id}/history, with a CSV of it).

Every page is complete without JavaScript: the first paint comes from the
same services the JSON API answers from (occupancy, location, stays), and
the scripts (board.js, badge.js, history.js) only keep it live by polling
that API. Times follow ``display``: the site's clock, 24-hour, ages
counted on the server.
"""

import csv
import dataclasses
import datetime
import io
from zoneinfo import ZoneInfo

from pydantic import Field
from pyramid.response import Response
from pyramid.view import view_config

from .. import pages
from ..alerts.services import AlertService
from ..csvsafe import escape_cell
from ..db import utcnow
from ..endpoints import query_params
from ..errors import ServiceError
from ..locating.services import LocatingService
from ..permissions import VIEW, VIEW_HISTORY
from ..schemas import FormDay, Identifier, Query
from . import display
from .services import DashboardService, room_totals, stay_seconds

# The board asks for occupancy this often: a badge reports every ~5 s and
# locating smooths over a window, so a faster poll would show nothing new.
BOARD_POLL_MS = 5000
# The badge chart: the last minutes drawn on load, then a poll every 2 s
# (a badge's payload changes every ~5 s).
CHART_MINUTES = 5
CHART_POLL_MS = 2000
# Confidence in words, so that it never rests on colour alone.
CONFIDENCE_WORDS = ((0.8, "high"), (0.5, "medium"), (0.0, "low"))


class BoardQuery(Query):
    site: Identifier | None = Field(None, description="The site shown.")
    q: str | None = Field(None, max_length=100, description="Wearer or badge.")


class DayQuery(Query):
    date: FormDay = None


def confidence_word(probability: float) -> str:
    return next(word for floor, word in CONFIDENCE_WORDS if probability >= floor)


def duration(seconds: float) -> str:
    """``2 h 05 min``, ``12 min``, ``40 s``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def clock(moment: datetime.datetime | str | None, zone) -> str:
    """``14:05:09`` on the site's clock (the day is the page's)."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    return moment.astimezone(zone).strftime("%H:%M:%S")


def _helpers(now: datetime.datetime, zone) -> dict:
    return {
        **display.helpers(now),
        "now": now,
        "zone": zone,
        "zone_label": display.zone_label(zone, now),
        "clock": lambda moment: clock(moment, zone),
        "confidence_word": confidence_word,
        "duration": duration,
    }


def _matches(q: str | None, occupant) -> bool:
    if not q:
        return True
    text = f"{occupant.badge_id} {occupant.wearer or ''}".casefold()
    return q.casefold() in text


# ---- the house now -----------------------------------------------------------


@pages.page("dashboard.home", VIEW, "board.jinja2")
def board(request):
    now = utcnow()
    query = query_params(request, BoardQuery)
    dashboard = request.find_service(DashboardService)
    site = dashboard.site(query.site)
    zone = dashboard.zone(site)
    page = {
        **_helpers(now, zone),
        "site": site,
        "sites": dashboard.sites(),
        "q": query.q or "",
        "matches": lambda occupant: _matches(query.q, occupant),
        "wearers": bool(request.has_permission(VIEW_HISTORY)),
        "poll_ms": BOARD_POLL_MS,
        "occupancy": None,
        "problem": None,
        "alerts": [],
    }
    if site is None:
        return page
    floors, _labels = dashboard.floors(site.id)
    page["floors"] = floors
    page["status"] = dashboard.status(site.id)
    page["alerts"] = request.find_service(AlertService).open_alerts(
        site.id, with_wearers=page["wearers"]
    )
    try:
        occupancy = request.find_service(LocatingService).occupancy(
            site.id, with_wearers=page["wearers"]
        )
    except ServiceError as exc:
        # No active model yet (or none that loads): the page says so and
        # shows who is heard, and board.js polls the page itself, not
        # occupancy, until a model places badges in rooms.
        page["problem"] = exc.message
        page["heard"], page["not_heard"] = dashboard.heard(
            site.id, with_wearers=page["wearers"]
        )
        return page
    page["occupancy"] = occupancy
    page["rooms"] = {room.room_id: room for room in occupancy.rooms}
    # A room the model knows but the registry lost still gets a card.
    placed = {room_id for floor in floors for room_id, _name in floor.rooms}
    page["unplaced_rooms"] = [r for r in occupancy.rooms if r.room_id not in placed]
    return page


# ---- one badge ---------------------------------------------------------------


def _badge_page(request, badge_id: str) -> dict:
    now = utcnow()
    dashboard = request.find_service(DashboardService)
    badge = dashboard.require_badge(badge_id)
    site = dashboard.site(badge.site_id) if badge and badge.site_id else None
    zone = dashboard.zone(site)
    history = bool(request.has_permission(VIEW_HISTORY))
    return {
        **_helpers(now, zone),
        "badge_id": badge_id,
        "badge": badge,
        "site": site,
        # A site without an active model locates no one: the pages say why.
        "no_model": site is not None and dashboard.model(site.id) is None,
        "wearer": badge.wearer if history and badge else None,
        "history": history,
    }


def _badge_now(request, badge_id: str) -> dict:
    """The badge page's "Now" panel: where the badge is, or why not."""
    page = _badge_page(request, badge_id)
    page["location"] = page["problem"] = None
    try:
        page["location"] = request.find_service(LocatingService).location(badge_id)
    except ServiceError as exc:  # not heard lately, no model: the page says so
        page["problem"] = exc.message
    if page["location"] is not None:
        page["raw"] = {room[0]: room[1] for room in page["location"].raw}
    return page


@pages.page("dashboard.badge_now", VIEW, "_badge_now.jinja2")
def badge_now(request):
    """The "Now" panel alone, which badge.js swaps in every few seconds."""
    return _badge_now(request, request.matchdict["badge_id"])


@pages.page("dashboard.badge", VIEW, "badge.jinja2")
def badge_page(request):
    badge_id = request.matchdict["badge_id"]
    page = _badge_now(request, badge_id)
    dashboard = request.find_service(DashboardService)
    locating = request.find_service(LocatingService)
    site_id = page["site"].id if page["site"] else None
    if page["location"] is not None:
        site_id = page["location"].site_id
    page["beacon_rooms"] = dashboard.beacon_rooms(site_id)
    page["chart_after"] = dashboard.chart_start(badge_id, CHART_MINUTES)
    page["chart_minutes"] = CHART_MINUTES
    page["poll_ms"] = CHART_POLL_MS
    page["page_limit"] = request.registry.settings["stethoscope.readings.page_limit"]
    page["stays"] = None
    if page["history"]:
        page.update(_day_layout(request, _Day.of(request, page["zone"])))
        try:
            page["stays"] = locating.stays(badge_id)
        except ServiceError as exc:
            page["stays_problem"] = exc.message
        page.update(_stays_summary(page["stays"] or ()))
    return page


# ---- a day ---------------------------------------------------------------------


def _night_spans(day_start, day_end, zone, night_start: int, night_end: int):
    """The night hours of a day as (start, end) moments, in order."""
    spans = []
    day = day_start.astimezone(zone).date()

    def at(hour, offset=0):
        when = datetime.datetime.combine(
            day + datetime.timedelta(days=offset), datetime.time(hour), zone
        )
        return min(max(when, day_start), day_end)

    if night_start > night_end:  # across midnight: morning and evening
        spans = [(day_start, at(night_end)), (at(night_start), day_end)]
    elif night_start < night_end:
        spans = [(at(night_start), at(night_end))]
    return [(start, end) for start, end in spans if end > start]


def _day_layout(request, day: "_Day") -> dict:
    """How a day is drawn: where a moment falls on the timeline (0–1000),
    the hour ticks, the night hours and whether a stay began in them."""
    settings = request.registry.settings
    night = (
        settings["stethoscope.dashboard.night_start"],
        settings["stethoscope.dashboard.night_end"],
    )
    # In UTC: aware datetimes of one zone subtract as wall clocks, which
    # would make every day 24 hours long.
    start_utc = day.start.astimezone(datetime.UTC)
    span = (day.end.astimezone(datetime.UTC) - start_utc).total_seconds()
    zone = day.zone
    nights = _night_spans(day.start, day.end, zone, *night)

    def moment_of(value) -> datetime.datetime:
        return (
            datetime.datetime.fromisoformat(value) if isinstance(value, str) else value
        )

    def position(value) -> float:
        seconds = (
            moment_of(value).astimezone(datetime.UTC) - start_utc
        ).total_seconds()
        return round(max(0.0, min(1.0, seconds / span)) * 1000, 2)

    def at_night(stay) -> bool:
        began = position(stay.from_)
        return any(position(a) <= began < position(b) for a, b in nights)

    return {
        "position": position,
        "nights": nights,
        "night_hours": night,
        "at_night": at_night,
        # Every third hour of the day's clock (a 23- or 25-hour day too).
        "hours": [
            (position(tick), tick.astimezone(zone).strftime("%H"))
            for tick in (
                start_utc + datetime.timedelta(hours=h)
                for h in range(0, int(span // 3600) + 1, 3)
            )
        ],
        "day_hours": round(span / 3600),
    }


@dataclasses.dataclass(frozen=True)
class _Day:
    """The day a page shows (``?date=``, else today) on the site's clock."""

    zone: ZoneInfo
    day: datetime.date
    today: datetime.date
    start: datetime.datetime
    end: datetime.datetime

    @classmethod
    def of(cls, request, zone) -> "_Day":
        query = query_params(request, DayQuery)
        today = utcnow().astimezone(zone).date()
        day = query.date or today
        start = datetime.datetime.combine(day, datetime.time(), zone)
        end = datetime.datetime.combine(
            day + datetime.timedelta(days=1), datetime.time(), zone
        )
        return cls(zone, day, today, start, end)


def _badge_day(request) -> tuple[dict, _Day]:
    """The badge page's values and the day asked for: a history's start."""
    page = _badge_page(request, request.matchdict["badge_id"])
    return page, _Day.of(request, page["zone"])


def _stays_summary(stays) -> dict:
    """Time per room, and each room's place in the day's colours."""
    rooms = sorted({stay.room_id for stay in stays})
    return {
        "totals": room_totals(stays),
        "room_index": {room_id: index for index, room_id in enumerate(rooms)},
    }


def _stays_of(request, badge_id: str, day: _Day) -> list:
    return request.find_service(LocatingService).stays(badge_id, day=day.day)


@pages.page("dashboard.badge_history", VIEW_HISTORY, "history.jinja2")
def history_page(request):
    page, day = _badge_day(request)
    stays, problem = [], None
    try:
        stays = _stays_of(request, page["badge_id"], day)
    except ServiceError as exc:  # no site, no model: the page says why
        problem = exc.message
    page.update(
        day=day.day,
        today=day.today,
        previous_day=day.day - datetime.timedelta(days=1),
        next_day=day.day + datetime.timedelta(days=1) if day.day < day.today else None,
        stays=stays,
        problem=problem,
        stay_seconds=stay_seconds,
        **_stays_summary(stays),
        **_day_layout(request, day),
    )
    return page


@view_config(
    route_name="dashboard.badge_history_csv",
    request_method="GET",
    permission=VIEW_HISTORY,
)
def history_csv(request):
    page, day = _badge_day(request)
    badge_id = page["badge_id"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "badge_id",
            "room_id",
            "room_name",
            "from",
            "to",
            "seconds",
            "readings",
            "confidence",
        ]
    )
    for stay in _stays_of(request, badge_id, day):
        writer.writerow(
            [
                escape_cell(badge_id),
                escape_cell(stay.room_id),
                escape_cell(stay.room_name),
                stay.from_,
                stay.to,
                round(stay_seconds(stay)),
                stay.readings,
                f"{stay.confidence:.3f}",
            ]
        )
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in badge_id)
    filename = f"{safe_name}-{day.day.isoformat()}.csv"
    return Response(
        out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        content_disposition=f'attachment; filename="{filename}"',
    )
