"""The dashboard's HTML pages; live data comes from the JSON API by polling."""

import datetime

from pyramid.view import view_config

from ..ingest.services import ReadingQueryService
from ..permissions import VIEW

# Rows on the recent-readings page, both as rendered and as kept by the
# live script, which drops the oldest as new ones arrive.
RECENT_ROWS = 50
# Gateways post about once a second per badge and a badge's payload changes
# every ~5 s, so polling every 2 s shows each new reading promptly without
# making an idle dashboard a noticeable load.
POLL_MS = 2000
# Rows asked for per poll request; a backlog is fetched a few pages a poll.
POLL_PAGE_ROWS = 100


def display_time(iso: str) -> str:
    """``2024-05-01 12:34:56 UTC`` from an ISO-8601 time (seconds, in UTC).

    The browser rewrites it in the viewer's local time; this is what is
    shown until then, or without JavaScript.
    """
    moment = datetime.datetime.fromisoformat(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def strongest_first(beacons: dict[str, int]) -> list[tuple[str, int]]:
    """Beacons by RSSI, strongest (nearest) first; ties by beacon id."""
    return sorted(beacons.items(), key=lambda item: (-item[1], item[0]))


@view_config(
    route_name="dashboard.home",
    request_method="GET",
    renderer="home.jinja2",
    permission=VIEW,
)
def home(request):
    readings = request.find_service(ReadingQueryService).page(
        badge_id=None, after=None, limit=RECENT_ROWS
    )
    return {
        # Newest first, as the live script adds them.
        "readings": [
            {
                **reading,
                "observed_text": display_time(reading["observed_at"]),
                "beacon_list": strongest_first(reading["beacons"]),
            }
            for reading in reversed(readings)
        ],
        "last_id": readings[-1]["id"] if readings else 0,
        "max_rows": RECENT_ROWS,
        "page_limit": min(
            POLL_PAGE_ROWS, request.registry.settings["stethoscope.readings.page_limit"]
        ),
        "poll_ms": POLL_MS,
    }
