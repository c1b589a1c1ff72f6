"""The staff pages beside the board: recent readings, gateways, beacons,
badges and alerts.

/gateways, /beacons, /badges and /alerts are also JSON endpoints (their
features' views). A browser prefers text/html and gets these pages; a
client asking for application/json, for */*, or sending no Accept header
at all gets the JSON as before. ``accept`` alone would not do: Pyramid
takes a missing Accept header or */* as accepting text/html, and would
answer scripts with a page; the ``prefers_html`` predicate decides as the
error views do (stethoscope.ops.errors.wants_html).

Times follow stethoscope.dashboard.display: the site's clock, 24-hour,
ages counted on the server.
"""

import dataclasses
import datetime
from zoneinfo import ZoneInfo

from ..alerts.services import AlertService
from ..db import utcnow
from ..endpoints import query_params
from ..errors import Invalid, ServiceError
from ..ingest.services import ReadingQueryService
from ..locating.services import LocatingService
from ..ops.errors import wants_html
from ..pages import page
from ..permissions import VIEW, VIEW_HISTORY
from ..registry.services import RegistryService, SeenService
from . import display
from .devices import BeaconActivity, trend_text
from .schemas import ReadingsFilter

HTML = "text/html"


class PrefersHtml:
    """View predicate: the client prefers text/html to application/json."""

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self):
        return f"prefers_html = {self.value}"

    phash = text

    def __call__(self, context, request):
        return wants_html(request) == self.value


# Rows on the readings page: a screenful or two of the newest.
READINGS_ROWS = 100
# A reading received this much later than it was observed was not live: a
# gateway uploading its buffer, or a batch import. Live readings arrive
# within a second or two; a gateway's clock may be off by a few seconds.
LIVE_DELAY = datetime.timedelta(seconds=60)
# Cleared alerts shown under the open ones.
CLEARED_ROWS = 20


@dataclasses.dataclass(frozen=True)
class Clocks:
    """Which clock each row is shown on: its site's, else the house's (the
    one site's, when there is one), else UTC."""

    sites: dict[str, ZoneInfo]
    default: ZoneInfo

    @classmethod
    def of(cls, registry: RegistryService) -> "Clocks":
        sites = {site.id: display.zone_of(site.timezone) for site in registry.sites()}
        zones = set(sites.values())
        return cls(sites, zones.pop() if len(zones) == 1 else display.UTC)

    def zone(self, site_id: str | None) -> ZoneInfo:
        return self.sites.get(site_id, self.default) if site_id else self.default

    def zone_of(self, row) -> ZoneInfo:
        """The clock of a registry row (a badge, a gateway; None: undescribed)."""
        return self.zone(getattr(row, "site_id", None))


def staff_page(route_name: str, template: str):
    """A page at a JSON endpoint's route, for the browsers that prefer it."""
    return page(route_name, VIEW, template, accept=HTML, prefers_html=True)


class _Screen:
    """What every staff page starts from: the time, the registry and the
    clocks its rows are shown on."""

    def __init__(self, request):
        self.now = utcnow()
        self.registry = request.find_service(RegistryService)
        self.clocks = Clocks.of(self.registry)

    def values(self, **values) -> dict:
        """The template's context: the display helpers and ``values``."""
        return {
            **display.helpers(self.now),
            "now": self.now,
            "clocks": self.clocks,
            "zone_label": display.zone_label(self.clocks.default, self.now),
            **values,
        }


def _errors(exc: Invalid) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors:
        errors.setdefault(error.field.split(".")[0], error.message)
    return errors


# ---- readings ----------------------------------------------------------------


def _on_clock(moment: datetime.datetime | None, zone) -> datetime.datetime | None:
    """A filter's time: one without an offset is on the site's clock."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=zone)


def _reading_row(reading, zone) -> dict:
    delay = reading.received_at - reading.observed_at
    return {
        "reading": reading,
        "zone": zone,
        "beacons": sorted(reading.beacons.items(), key=lambda kv: (-kv[1], kv[0])),
        "imported": delay > LIVE_DELAY,
        "delay": display.age(reading.observed_at, reading.received_at).removesuffix(
            " ago"
        ),
    }


@page("dashboard.readings", VIEW, "readings.jinja2")
def readings_page(request):
    screen = _Screen(request)
    clocks = screen.clocks
    form = {key: request.GET.get(key, "")[:100] for key in ReadingsFilter.model_fields}
    errors: dict[str, str] = {}
    readings = []
    try:
        query = query_params(request, ReadingsFilter)
        since = _on_clock(query.since, clocks.default)
        until = _on_clock(query.until, clocks.default)
        if since and until and until <= since:
            errors["until"] = "must be later than since"
    except Invalid as exc:
        errors = _errors(exc)
    if errors:
        request.response.status = 400
    else:
        badge_sites = {badge.id: badge.site_id for badge in screen.registry.badges()}
        readings = [
            _reading_row(reading, clocks.zone(badge_sites.get(reading.badge_id)))
            for reading in request.find_service(ReadingQueryService).observed(
                badge_id=query.badge,
                gateway_id=query.gateway,
                since=since,
                until=until,
                limit=READINGS_ROWS,
            )
        ]
    return screen.values(
        form=form,
        errors=errors,
        readings=readings,
        max_rows=READINGS_ROWS,
        filtered=any(form.values()),
    )


# ---- gateways ----------------------------------------------------------------


def _per_minute(seen: dict) -> float | None:
    first = datetime.datetime.fromisoformat(seen["first_seen"])
    last = datetime.datetime.fromisoformat(seen["last_seen"])
    minutes = max((last - first).total_seconds() / 60, 1.0)
    return seen["posts"] / minutes


@staff_page("registry.gateways", "gateways.jinja2")
def gateways_page(request):
    screen = _Screen(request)
    described = {gateway.id: gateway for gateway in screen.registry.gateways()}
    gateways = [
        {
            "seen": seen,
            "row": described.get(seen["id"]),
            "zone": screen.clocks.zone_of(described.get(seen["id"])),
            "per_minute": _per_minute(seen),
            "duplicate_share": seen["duplicates"] / seen["posts"]
            if seen["posts"]
            else None,
        }
        for seen in request.find_service(SeenService).gateways()
    ]
    return screen.values(gateways=gateways)


# ---- beacons -----------------------------------------------------------------


@staff_page("registry.beacons", "beacons.jinja2")
def beacons_page(request):
    screen = _Screen(request)
    clocks = screen.clocks
    hearings = request.find_service(BeaconActivity).recent()
    beacons = [
        {
            "id": beacon.id,
            "label": beacon.label,
            "room": beacon.room,
            "zone": clocks.zone(beacon.room.site_id if beacon.room else None),
            "last_heard": beacon.last_heard,
            "hearing": hearings.pop(beacon.id, None),
        }
        for beacon in screen.registry.beacons()
    ]
    # Heard, but not in the registry yet: an admin has one to place.
    beacons += [
        {
            "id": beacon_id,
            "label": None,
            "room": None,
            "zone": clocks.default,
            "last_heard": None,
            "hearing": hearing,
        }
        for beacon_id, hearing in sorted(hearings.items())
    ]
    return screen.values(
        beacons=beacons,
        trend_text=trend_text,
        window_minutes=5,
    )


# ---- badges ------------------------------------------------------------------


def _rooms_now(request, site_ids) -> tuple[dict[str, str], dict[str, str]]:
    """Each located badge's room (its name, or "unknown"), and why a site's
    badges have none (no active model, …)."""
    locating = request.find_service(LocatingService)
    rooms: dict[str, str] = {}
    missing: dict[str, str] = {}
    for site_id in sorted(site_ids):
        try:
            occupancy = locating.occupancy(site_id, with_wearers=False)
        except ServiceError as exc:
            missing[site_id] = exc.message
            continue
        for room in occupancy.rooms:
            for badge in room.badges:
                rooms[badge.badge_id] = room.room_name
        for badge in occupancy.unknown:
            rooms[badge.badge_id] = "unknown"
    return rooms, missing


@staff_page("registry.badges", "badges.jinja2")
def badges_page(request):
    screen = _Screen(request)
    described = {badge.id: badge for badge in screen.registry.badges()}
    seen = {badge["id"]: badge for badge in request.find_service(SeenService).badges()}
    # Heard ones first, most recently heard first; then those never heard.
    ids = list(seen) + sorted(set(described) - set(seen))
    rooms, missing = _rooms_now(
        request, {b.site_id for b in described.values() if b.site_id}
    )
    badges = [
        {
            "id": badge_id,
            "row": described.get(badge_id),
            "seen": seen.get(badge_id),
            "zone": screen.clocks.zone_of(described.get(badge_id)),
            "room": rooms.get(badge_id),
        }
        for badge_id in ids
    ]
    return screen.values(
        badges=badges,
        missing=missing,
        wearers=bool(request.has_permission(VIEW_HISTORY)),
    )


# ---- alerts ------------------------------------------------------------------


@staff_page("alerts.list", "alerts.jinja2")
def alerts_page(request):
    service = request.find_service(AlertService)
    wearers = bool(request.has_permission(VIEW_HISTORY))
    open_alerts, cleared = service.open_and_cleared(
        cleared_limit=CLEARED_ROWS, with_wearers=wearers
    )
    return _Screen(request).values(
        open_alerts=open_alerts,
        cleared=cleared,
        cleared_rows=CLEARED_ROWS,
    )
