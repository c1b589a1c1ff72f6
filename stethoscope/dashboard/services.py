"""What the house board, the badge page and its history show besides
locations: the site picked, its rooms by floor, the status strip, who was
heard lately (while no model places them), the chart's starting point, a
day's stays summed per room.

Locations, stays and alerts come from their own services (locating,
alerts); this service reads only what the registry, the activity counts
and the model versions already hold, plus two small reading queries.
"""

import datetime
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import NotFound
from ..ingest.models import Reading
from ..learning.services import ModelService
from ..registry.models import Badge, Gateway, Room, Site
from ..registry.services import RegistryService, SeenService
from .display import zone_of

# Readings per minute are counted over this window: long enough to smooth a
# badge's 5-s update cadence, short enough to show a gateway dropping out.
RATE_WINDOW = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class ModelSummary:
    version: int
    algorithm: str
    accuracy: float | None
    balanced_accuracy: float | None


@dataclass(frozen=True)
class GatewayState:
    id: str
    name: str
    online: bool
    last_seen: datetime.datetime | None


@dataclass(frozen=True)
class StatusStrip:
    """Is the system healthy, at a glance: gateways, traffic, the model."""

    gateways: list[GatewayState]
    readings_per_minute: int
    duplicate_share: float | None
    model: ModelSummary | None

    @property
    def gateways_up(self) -> int:
        return sum(1 for gateway in self.gateways if gateway.online)

    @property
    def gateways_down(self) -> list[GatewayState]:
        return [gateway for gateway in self.gateways if not gateway.online]


@dataclass(frozen=True)
class Heard:
    """A badge of a site and when it was last heard (None: never)."""

    badge_id: str
    wearer: str | None
    last_heard: str | None  # ISO 8601, as occupancy gives it


@dataclass(frozen=True)
class Floor:
    label: str
    rooms: list[tuple[str, str]] = field(default_factory=list)  # (id, name)


@dataclass(frozen=True)
class RoomTotal:
    room_id: str
    room_name: str
    seconds: float
    stays: int


def floor_label(floor: int | None) -> str:
    if floor is None:
        return "Other rooms"
    if floor == 0:
        return "Ground floor"
    return f"Floor {floor}"


def stay_seconds(stay) -> float:
    """A stay's length from its first to its last reading."""
    start = datetime.datetime.fromisoformat(stay.from_)
    end = datetime.datetime.fromisoformat(stay.to)
    return max((end - start).total_seconds(), 0.0)


def room_totals(stays) -> list[RoomTotal]:
    """Time and stays per room over ``stays``, longest first."""
    totals: dict[str, list] = {}
    for stay in stays:
        entry = totals.setdefault(stay.room_id, [stay.room_name, 0.0, 0])
        entry[1] += stay_seconds(stay)
        entry[2] += 1
    return sorted(
        (
            RoomTotal(room_id, name, seconds, count)
            for room_id, (name, seconds, count) in totals.items()
        ),
        key=lambda total: (-total.seconds, total.room_name),
    )


@dataclass(frozen=True, eq=False)
class DashboardService:
    """The site, its floors and its health, for the staff pages (a service
    per request, compared by identity)."""

    session: Session
    registry: RegistryService
    seen: SeenService
    models: ModelService
    _: KW_ONLY
    recent: datetime.timedelta
    clock: Callable[[], datetime.datetime] = utcnow

    def sites(self) -> list[Site]:
        """Every site, by id (the board's picker)."""
        return self.registry.sites()

    def site(self, site_id: str | None) -> Site | None:
        """The site asked for; the first one when none is; None when the
        house has no site yet. NotFound for an unknown id."""
        if site_id is not None:
            return self.registry.get_site(site_id)
        sites = self.sites()
        return sites[0] if sites else None

    def zone(self, site: Site | None) -> ZoneInfo:
        return zone_of(site.timezone if site else None)

    def floors(self, site_id: str) -> tuple[list[Floor], dict[str, str]]:
        """The site's rooms grouped by floor (ground floor first, rooms
        without a floor last), and each room's floor label."""
        by_floor: dict[int | None, Floor] = {}
        rooms: list[Room] = self.registry.rooms(site_id)
        for room in sorted(rooms, key=lambda r: (r.floor is None, r.floor or 0)):
            by_floor.setdefault(room.floor, Floor(floor_label(room.floor)))
            by_floor[room.floor].rooms.append((room.id, room.name))
        labels = {room.id: floor_label(room.floor) for room in rooms}
        return list(by_floor.values()), labels

    def status(self, site_id: str) -> StatusStrip:
        """The site's gateways (online or not), its readings in the last
        minute, the share of duplicate posts, its active model."""
        described = {
            gateway.id: gateway
            for gateway in self.registry.gateways()
            if gateway.site_id == site_id
        }
        seen = {
            row["id"]: row for row in self.seen.gateways() if row["id"] in described
        }
        gateways = [
            GatewayState(
                id=gateway_id,
                name=gateway.name or gateway_id,
                online=bool(seen.get(gateway_id, {}).get("online")),
                last_seen=_parsed(seen.get(gateway_id, {}).get("last_seen")),
            )
            for gateway_id, gateway in sorted(described.items())
        ]
        posts = sum(row["posts"] for row in seen.values())
        duplicates = sum(row["duplicates"] for row in seen.values())
        since = self.clock() - RATE_WINDOW
        per_minute = self.session.scalar(
            select(func.count())
            .select_from(Reading)
            .join(Badge, Badge.id == Reading.badge_id)
            .where(Badge.site_id == site_id, Reading.observed_at >= since)
        )
        return StatusStrip(
            gateways=gateways,
            readings_per_minute=per_minute or 0,
            duplicate_share=duplicates / posts if posts else None,
            model=self.model(site_id),
        )

    def model(self, site_id: str) -> ModelSummary | None:
        """The site's active model, None while it has none."""
        version = self.models.active(site_id)
        if version is None:
            return None
        metrics = version.metrics or {}
        return ModelSummary(
            version=version.version,
            algorithm=version.algorithm,
            accuracy=metrics.get("accuracy"),
            balanced_accuracy=metrics.get("balanced_accuracy"),
        )

    def heard(
        self, site_id: str, *, with_wearers: bool
    ) -> tuple[list[Heard], list[Heard]]:
        """The site's badges heard within ``recent`` and its other active
        badges, each by id: the board's lists while no model places badges
        in rooms. A badge is the site's as locating decides (its own site,
        else the site of the gateway that heard it)."""
        since = self.clock() - self.recent
        latest = dict(
            self.session.execute(
                select(Reading.badge_id, func.max(Reading.observed_at))
                .outerjoin(Badge, Badge.id == Reading.badge_id)
                .outerjoin(Gateway, Gateway.id == Reading.gateway_id)
                .where(
                    Reading.observed_at >= since,
                    func.coalesce(Badge.site_id, Gateway.site_id) == site_id,
                )
                .group_by(Reading.badge_id)
            ).all()
        )
        own = {
            badge.id: badge
            for badge in self.session.scalars(
                select(Badge).where(Badge.site_id == site_id, Badge.active)
            )
        }

        def entry(badge_id: str, last: datetime.datetime | None) -> Heard:
            badge = own.get(badge_id)
            wearer = badge.wearer if with_wearers and badge else None
            return Heard(badge_id, wearer, last.isoformat() if last else None)

        heard = [entry(badge_id, at) for badge_id, at in sorted(latest.items())]
        not_heard = [
            entry(badge_id, badge.last_seen)
            for badge_id, badge in sorted(own.items())
            if badge_id not in latest
        ]
        return heard, not_heard

    def badge(self, badge_id: str) -> Badge | None:
        """The badge as the registry describes it, or None."""
        return self.registry.badge(badge_id)

    def require_badge(self, badge_id: str) -> Badge | None:
        """The registry's badge, None for one only heard; NotFound for a
        badge neither described nor ever heard."""
        badge = self.registry.badge(badge_id)
        if badge is None and not self.session.scalar(
            select(Reading.id).where(Reading.badge_id == badge_id).limit(1)
        ):
            raise NotFound(f"no badge {badge_id}")
        return badge

    def beacon_rooms(self, site_id: str | None) -> dict[str, str]:
        """Each placed beacon's room name (the chart's legend)."""
        return {
            beacon.id: beacon.room.name
            for beacon in self.registry.beacons(site_id)
            if beacon.room is not None
        }

    def chart_start(self, badge_id: str, minutes: int) -> int:
        """The reading id after which the badge's last ``minutes`` begin
        (the live chart pages forward from it through GET /rssi_readings)."""
        since = self.clock() - datetime.timedelta(minutes=minutes)
        first = self.session.scalar(
            select(func.min(Reading.id)).where(
                Reading.badge_id == badge_id, Reading.observed_at >= since
            )
        )
        if first is not None:
            return first - 1
        last = self.session.scalar(
            select(func.max(Reading.id)).where(Reading.badge_id == badge_id)
        )
        return last or 0


def _parsed(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text) if text else None
