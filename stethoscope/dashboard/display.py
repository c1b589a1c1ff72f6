"""How the staff pages show times and names: one convention everywhere.

Times are shown on the site's clock (its IANA timezone; UTC where no site is
known), 24-hour, with the zone's abbreviation, and ages are counted on the
server from aware UTC datetimes. An age is never computed in the browser
from text without an offset, which is how a reading that just arrived came
to be shown as "7 hours ago".

Names (rooms, wearers, gateway names) are admins' free text. Text
direction overrides are refused when a name is entered (registry.schemas);
names stored before that are shown with them removed, so a name can never
reverse the text after it.
"""

import datetime
import re
import zoneinfo

# U+202A–U+202E (embeddings and overrides), U+2066–U+2069 (isolates).
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
UTC = zoneinfo.ZoneInfo("UTC")


def zone_of(name: str | None) -> zoneinfo.ZoneInfo:
    """The site's zone, or UTC for no site or a zone this system lost."""
    if not name:
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def at(moment: datetime.datetime | str | None, zone: zoneinfo.ZoneInfo) -> str:
    """``2024-05-01 13:34:56 BST``: the site's clock, 24-hour; empty for none."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def age(moment: datetime.datetime | str | None, now: datetime.datetime) -> str:
    """``12 s ago``, ``4 min ago``, ``3 h ago``, ``2 d ago``; empty for none.

    A moment a little ahead of ``now`` (a gateway's clock, this server's
    request time) is "just now", never a negative age.
    """
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    seconds = (now - moment).total_seconds()
    if seconds < 1:
        return "just now"
    if seconds < 120:
        return f"{int(seconds)} s ago"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def plain(text: str | None) -> str:
    """``text`` without direction overrides or isolates; empty for none."""
    return BIDI_CONTROLS.sub("", text) if text else ""


def zone_label(zone: zoneinfo.ZoneInfo, now: datetime.datetime) -> str:
    """``Europe/London (GMT)``, for a caption saying which clock is shown."""
    return f"{zone.key} ({now.astimezone(zone).strftime('%Z')})"


def helpers(now: datetime.datetime) -> dict:
    """What every page template gets to show times and names."""
    return {"at": at, "age": lambda moment: age(moment, now), "plain": plain}
