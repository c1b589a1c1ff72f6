"""Put a simulated house into the registry, as an admin would describe it.

Everything goes through RegistryService, so the same checks apply as on
the admin pages. Running it again changes nothing (and says so); an admin's
edits to the house's rooms, beacons, gateways or badges are put back.
"""

from dataclasses import dataclass, field

from ..registry.schemas import BadgeChange, GatewayChange, SiteChange, SiteIn
from ..registry.services import RegistryService
from .house import House


@dataclass
class Installed:
    """What ``install_house`` did: ids per kind of row, by outcome."""

    site: str = "unchanged"  # created, updated or unchanged
    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.site != "unchanged" or any(
            [*self.created.values(), *self.updated.values()]
        )

    def note(self, kind: str, outcome: str, item_id: str) -> None:
        getattr(self, outcome).setdefault(kind, []).append(item_id)

    def count(self, outcome: str, kind: str) -> int:
        return len(getattr(self, outcome).get(kind, []))


KINDS = ("rooms", "beacons", "gateways", "badges")


def install_house(service: RegistryService, house: House, badges: int) -> Installed:
    """Create or update ``house``'s site, rooms (floors and doors), beacons
    (placed in their rooms), gateways and its first ``badges`` badges.

    Run inside a transaction; stethoscope.errors propagate.
    """
    result = Installed()
    site = service.site(house.site_id)
    if site is None:
        service.create_site(
            SiteIn(id=house.site_id, name=house.name, timezone=house.timezone)
        )
        result.site = "created"
    elif service.update_site(
        site, SiteChange(name=house.name, timezone=house.timezone)
    ):
        result.site = "updated"

    rooms = service.import_rooms(
        [
            (
                str(i),
                {
                    "id": room.id,
                    "name": room.name,
                    "site": house.site_id,
                    "floor": room.floor,
                    "adjacent": house.adjacent[room.id],
                },
            )
            for i, room in enumerate(house.rooms)
        ],
        "simulate",
    )
    beacons = service.import_beacons(
        [
            (
                str(i),
                {"id": beacon.id, "room": beacon.room_id, "label": beacon.name},
            )
            for i, beacon in enumerate(house.beacons)
        ],
        "simulate",
    )
    for kind, outcome in (("rooms", rooms), ("beacons", beacons)):
        for key, ids in outcome.items():
            for item_id in ids:
                result.note(kind, key, item_id)

    for gateway in house.gateways:
        _, created, changes = service.save_gateway(
            gateway.id, GatewayChange(name=gateway.name, site=house.site_id)
        )
        result.note("gateways", _outcome(created, changes), gateway.id)
    for number, badge_id in enumerate(house.badge_ids(badges), start=1):
        _, created, changes = service.save_badge(
            badge_id, BadgeChange(wearer=house.wearer(number), site=house.site_id)
        )
        result.note("badges", _outcome(created, changes), badge_id)
    return result


def _outcome(created: bool, changes: dict) -> str:
    return "created" if created else "updated" if changes else "unchanged"
