"""What is wrong at a site now: each kind of alert as a query.

Each ``*_conditions`` function reads the database (no writes) and returns
the conditions that hold at ``now``; the evaluator (``services.py``) opens
an alert for a condition not yet open and clears an open alert whose
condition is gone. A condition is identified by (kind, subject); its
details (and message) are refreshed at each evaluation.

Times of day ("during the day", "at night") are the site's local hours:
the day runs from ``day_start_hour`` to ``night_start_hour``, the night
from ``night_start_hour`` to ``day_start_hour``, either may wrap midnight.
"""

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from ..config import setting_defaults
from ..ingest.models import Reading
from ..learning.data import beacon_changes
from ..learning.models import ModelActivation, ModelVersion
from ..registry.models import Badge, Beacon, Gateway, Room, Site

GATEWAY_SILENT = "gateway_silent"
BEACON_SILENT = "beacon_silent"
IMPOSTER_BEACON = "imposter_beacon"
MODEL_OUTDATED = "model_outdated"
BADGE_SILENT = "badge_silent"
LONG_STAY = "long_stay"
OUT_AT_NIGHT = "out_at_night"

# What staff should do about each kind, shown with every alert.
ADVICE = {
    GATEWAY_SILENT: "Check the gateway's power and network: the badges near "
    "it are not heard meanwhile.",
    BEACON_SILENT: "Battery or moved: replace its battery or put it back "
    "where it was; retraining is advised.",
    IMPOSTER_BEACON: "A new or moved beacon: place it in its room in the "
    "registry, record training runs and retrain.",
    MODEL_OUTDATED: "Beacons changed since the active model was trained: "
    "record training runs and retrain.",
    BADGE_SILENT: "Check the badge: is it worn, charged and in the house?",
    LONG_STAY: "Check on the resident.",
    OUT_AT_NIGHT: "The badge was not heard tonight: check that the resident "
    "is in the house.",
}
KINDS = tuple(ADVICE)
# Kinds whose subject is a badge: the API names its wearer to staff.
BADGE_KINDS = frozenset({BADGE_SILENT, LONG_STAY, OUT_AT_NIGHT})
# Imposter beacons listed in a model-outdated alert's details, at most.
LISTED_BEACONS = 20


@dataclass(frozen=True)
class AlertSettings:
    """The stethoscope.alerts.* settings as parsed; their defaults and ranges
    are declared once, in stethoscope.config.SETTINGS."""

    interval_seconds: int
    # The silences may be fractions of a minute.
    gateway_silent_minutes: float
    beacon_silent_minutes: float
    imposter_window_minutes: int
    imposter_min_readings: int
    badge_silent_minutes: float
    night_silent_minutes: float
    day_start_hour: int
    night_start_hour: int

    @classmethod
    def from_settings(cls, settings: Mapping) -> "AlertSettings":
        return cls(
            **{
                name: settings[f"stethoscope.alerts.{name}"]
                for name in cls.__dataclass_fields__
            }
        )

    @classmethod
    def defaults(cls, **changes) -> "AlertSettings":
        """The declared defaults, ``changes`` replacing some."""
        return dataclasses.replace(cls.from_settings(setting_defaults()), **changes)


@dataclass(frozen=True)
class Condition:
    """One thing wrong with one subject, as seen at one evaluation."""

    kind: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)


@dataclass(frozen=True)
class Observed:
    """Where locating placed a badge at one evaluation."""

    badge_id: str
    room_id: str
    room_name: str
    since: datetime.datetime


def zone_of(site: Site) -> ZoneInfo:
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def how_long(moment: datetime.datetime, now: datetime.datetime) -> str:
    """Whole minutes since ``moment``, or seconds under a minute ("0 min"
    would say it is not silent at all)."""
    seconds = int((now - moment).total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 else f"{max(seconds, 0)} s"


def is_day(local: datetime.datetime, settings: AlertSettings) -> bool:
    """Whether the site's local time ``local`` is in the day hours."""
    start, end = settings.day_start_hour, settings.night_start_hour
    if start <= end:
        return start <= local.hour < end
    return local.hour >= start or local.hour < end


def night_began(local: datetime.datetime, settings: AlertSettings):
    """When the night ``local`` is in began (the latest night_start_hour)."""
    began = datetime.datetime.combine(
        local.date(), datetime.time(settings.night_start_hour), local.tzinfo
    )
    if began > local:
        began = datetime.datetime.combine(
            local.date() - datetime.timedelta(days=1),
            datetime.time(settings.night_start_hour),
            local.tzinfo,
        )
    return began


def gateway_conditions(session, site: Site, now, settings) -> list[Condition]:
    """Gateways of the site not heard for gateway_silent_minutes (a gateway
    never heard yet is not silent: it is not installed)."""
    cutoff = now - datetime.timedelta(minutes=settings.gateway_silent_minutes)
    rows = session.execute(
        select(Gateway.id, Gateway.name, Gateway.last_seen).where(
            Gateway.site_id == site.id, Gateway.last_seen < cutoff
        )
    )
    return [
        Condition(
            GATEWAY_SILENT,
            gateway_id,
            f"Gateway {name or gateway_id} silent for {how_long(last_seen, now)}",
            {"last_seen": iso(last_seen), "name": name},
        )
        for gateway_id, name, last_seen in rows
    ]


def beacon_conditions(session, site: Site, now, settings) -> list[Condition]:
    """The site's placed beacons not heard for beacon_silent_minutes."""
    cutoff = now - datetime.timedelta(minutes=settings.beacon_silent_minutes)
    rows = session.execute(
        select(Beacon.id, Room.id, Room.name, Beacon.last_heard)
        .join(Room, Room.id == Beacon.room_id)
        .where(Room.site_id == site.id, Beacon.last_heard < cutoff)
    )
    return [
        Condition(
            BEACON_SILENT,
            beacon_id,
            f"Beacon {beacon_id} ({room_name}) not heard for "
            f"{how_long(last_heard, now)}",
            {"last_heard": iso(last_heard), "room_id": room_id},
        )
        for beacon_id, room_id, room_name, last_heard in rows
    ]


def _beacon_keys(session):
    # The keys of readings.beacons, one row each (as labels' coverage does).
    if session.get_bind().dialect.name == "postgresql":
        keys = (
            func.jsonb_object_keys(Reading.beacons)
            .table_valued("value")
            .render_derived()
        )
        return keys, keys.c.value
    keys = func.json_each(Reading.beacons).table_valued("key")
    return keys, keys.c.key


def imposter_conditions(
    session, site: Site, now, settings, vocabulary: Iterable[str] | None
) -> list[Condition]:
    """Beacons the active model does not know, heard in at least
    imposter_min_readings of the site's readings of the last
    imposter_window_minutes (heard by its gateways or from its badges).
    Without an active model there is nothing to compare with."""
    if vocabulary is None:
        return []
    since = now - datetime.timedelta(minutes=settings.imposter_window_minutes)
    keys, key = _beacon_keys(session)
    of_site = or_(
        Reading.gateway_id.in_(select(Gateway.id).where(Gateway.site_id == site.id)),
        Reading.badge_id.in_(select(Badge.id).where(Badge.site_id == site.id)),
    )
    counts = session.execute(
        select(key, func.count())
        .select_from(Reading)
        .join(keys, true())
        .where(Reading.observed_at >= since, of_site)
        .group_by(key)
        .having(func.count() >= settings.imposter_min_readings)
    )
    known = set(vocabulary)
    return [
        Condition(
            IMPOSTER_BEACON,
            beacon_id,
            f"Beacon {beacon_id}, unknown to the model, heard in {readings} "
            f"readings in {settings.imposter_window_minutes} min",
            {"readings": readings},
        )
        for beacon_id, readings in sorted(counts)
        if beacon_id not in known
    ]


def model_conditions(
    session, site: Site, now, settings, known: tuple[int, Iterable[str]] | None
) -> list[Condition]:
    """The site's active model, when a placed beacon it does not know was
    first heard after it was trained.

    ``known``: (version id, beacons) of the model this process serves. A
    beacon in a model's training data is no news to it however late it was
    first heard live, as after training on imported readings; without the
    active version loaded, every beacon first heard since counts."""
    active = session.execute(
        select(ModelVersion.id, ModelVersion.version, ModelVersion.created_at)
        .join(ModelActivation, ModelActivation.model_version_id == ModelVersion.id)
        .where(ModelActivation.site_id == site.id)
        .order_by(ModelActivation.id.desc())
        .limit(1)
    ).first()
    if active is None:
        return []
    version_id, version, trained_at = active
    learnt = set(known[1]) if known is not None and known[0] == version_id else ()
    newer = sorted(
        beacon_id
        for beacon_id, first_heard in beacon_changes(session, site.id).items()
        if first_heard > trained_at and beacon_id not in learnt
    )
    if not newer:
        return []
    return [
        Condition(
            MODEL_OUTDATED,
            site.id,
            f"Model {version} predates {len(newer)} beacon(s) first heard since",
            {
                "model_version_id": version_id,
                "model_version": version,
                "trained_at": iso(trained_at),
                "beacons": newer[:LISTED_BEACONS],
            },
        )
    ]


def badge_conditions(session, site: Site, now, settings) -> list[Condition]:
    """By the site's clock: in the day, active badges not heard for
    badge_silent_minutes; at night, active badges heard earlier that day
    (the day the night began) but not for night_silent_minutes."""
    local = now.astimezone(zone_of(site))
    if is_day(local, settings):
        kind, minutes = BADGE_SILENT, settings.badge_silent_minutes
        earliest = None
    else:
        kind, minutes = OUT_AT_NIGHT, settings.night_silent_minutes
        began = night_began(local, settings)
        earliest = datetime.datetime.combine(
            began.date(), datetime.time(), local.tzinfo
        )
    query = select(Badge.id, Badge.last_seen).where(
        Badge.site_id == site.id,
        Badge.active,
        Badge.last_seen < now - datetime.timedelta(minutes=minutes),
    )
    if earliest is not None:
        query = query.where(Badge.last_seen >= earliest)
    conditions = []
    for badge_id, last_seen in session.execute(query.order_by(Badge.id)):
        silent = how_long(last_seen, now)
        message = (
            f"Badge {badge_id} not heard for {silent}"
            if kind == BADGE_SILENT
            else f"Badge {badge_id} not heard tonight for {silent}"
        )
        conditions.append(
            Condition(kind, badge_id, message, {"last_seen": iso(last_seen)})
        )
    return conditions


def stay_conditions(
    stays: Iterable[tuple[str, str, datetime.datetime]],
    rooms: Mapping[str, tuple[str, int | None]],
    now: datetime.datetime,
) -> list[Condition]:
    """Badges in a room longer than its max_stay_minutes.

    ``stays``: (badge, room, since) as the evaluations have watched them;
    ``rooms``: room id -> (name, max_stay_minutes)."""
    conditions = []
    for badge_id, room_id, since in stays:
        name, limit = rooms.get(room_id, (room_id, None))
        if limit is None or now - since <= datetime.timedelta(minutes=limit):
            continue
        conditions.append(
            Condition(
                LONG_STAY,
                badge_id,
                f"Badge {badge_id} in {name} for {how_long(since, now)} "
                f"(limit {limit} min)",
                {"room_id": room_id, "since": iso(since), "limit_minutes": limit},
            )
        )
    return conditions


def room_limits(session: Session, site_id: str) -> dict[str, tuple[str, int | None]]:
    """The site's rooms: id -> (name, max_stay_minutes)."""
    return {
        room_id: (name, limit)
        for room_id, name, limit in session.execute(
            select(Room.id, Room.name, Room.max_stay_minutes).where(
                Room.site_id == site_id
            )
        )
    }
