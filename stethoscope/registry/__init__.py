"""The registry: gateways and badges as seen, gateway tokens, and the house
as admins describe it (sites, rooms, beacons, names and places of devices,
wearers of badges): its JSON API and its /admin/house pages."""

import functools

from ..audit.services import record
from ..singletons import ACTIVITY, TOKEN_CACHE
from .services import RegistryService, SeenService
from .tokens import GatewayTokenService

# Ids may hold any printable character but a space, "/" included (UUIDs and
# external ids): the last placeholder of a path takes the rest of it.


def registry_service(context, request) -> RegistryService:
    return RegistryService(request.db, audit=functools.partial(record, request))


def includeme(config):
    online_seconds = config.registry.settings["stethoscope.activity.online_seconds"]

    def seen_service(context, request):
        return SeenService(request.db, request.registry[ACTIVITY], online_seconds)

    config.register_service_factory(seen_service, SeenService)
    config.register_service_factory(registry_service, RegistryService)
    config.register_service_factory(
        lambda context, request: GatewayTokenService(
            request.db,
            request.registry[TOKEN_CACHE],
            audit=functools.partial(record, request),
        ),
        GatewayTokenService,
    )
    # Gateways and badges as seen (traffic), kept where they were.
    config.add_route("registry.gateways", "/gateways")
    config.add_route("registry.badges", "/badges")

    # JSON API. Everything below /rooms/ is a room's (any id may be
    # chosen, "import" included), so the file actions are beside it.
    config.add_route("registry.sites", "/sites")
    config.add_route("registry.site", "/sites/{site_id:.+}")
    config.add_route("registry.rooms", "/rooms")
    config.add_route("registry.room", "/rooms/{room_id:.+}")
    config.add_route("registry.rooms.export", "/export/rooms")
    config.add_route("registry.rooms.import", "/import/rooms")
    config.add_route("registry.beacons", "/beacons")
    config.add_route("registry.beacon", "/beacons/{beacon_id:.+}")
    config.add_route("registry.beacons.export", "/export/beacons")
    config.add_route("registry.beacons.import", "/import/beacons")
    config.add_route("registry.gateway_list", "/registry/gateways")
    config.add_route("registry.gateway", "/registry/gateways/{gateway_id:.+}")
    config.add_route("registry.badge_list", "/registry/badges")
    config.add_route("registry.badge", "/registry/badges/{badge_id:.+}")
    config.add_route("registry.unplaced", "/registry/unplaced")

    # Admin pages.
    config.add_route("admin.house", "/admin/house")
    config.add_route("admin.house.import", "/admin/house/import")
    config.add_route("admin.house.sites", "/admin/house/sites")
    config.add_route("admin.house.site", "/admin/house/sites/{site_id:.+}")
    config.add_route("admin.house.rooms", "/admin/house/rooms")
    config.add_route("admin.house.room", "/admin/house/rooms/{room_id:.+}")
    config.add_route("admin.house.beacons", "/admin/house/beacons")
    config.add_route("admin.house.beacon", "/admin/house/beacons/{beacon_id:.+}")
    config.add_route("admin.house.devices", "/admin/house/devices")
    config.add_route("admin.house.gateway", "/admin/house/gateways/{gateway_id:.+}")
    config.add_route("admin.house.badge", "/admin/house/badges/{badge_id:.+}")
    config.add_route("admin.house.unplaced", "/admin/house/unplaced")

    config.scan(".views")
    config.scan(".pages")
