"""The registry: gateways and badges as seen, gateway tokens, and the house
as admins describe it (sites, rooms, beacons, names and places of devices,
wearers of badges): its JSON API and its /admin/house pages."""

from ..audit.services import audited
from ..routes import add_routes
from ..singletons import ACTIVITY, TOKEN_CACHE
from .services import RegistryService, SeenService
from .tokens import GatewayTokenService

# Ids may hold any printable character but a space, "/" included (UUIDs and
# external ids): the last placeholder of a path takes the rest of it.
ROUTES = {
    # Gateways and badges as seen (traffic), kept where they were.
    "registry.gateways": "/gateways",
    "registry.badges": "/badges",
    # JSON API. Everything below /rooms/ is a room's (any id may be
    # chosen, "import" included), so the file actions are beside it.
    "registry.sites": "/sites",
    "registry.site": "/sites/{site_id:.+}",
    "registry.rooms": "/rooms",
    "registry.room": "/rooms/{room_id:.+}",
    "registry.rooms.export": "/export/rooms",
    "registry.rooms.import": "/import/rooms",
    "registry.beacons": "/beacons",
    "registry.beacon": "/beacons/{beacon_id:.+}",
    "registry.beacons.export": "/export/beacons",
    "registry.beacons.import": "/import/beacons",
    "registry.gateway_list": "/registry/gateways",
    "registry.gateway": "/registry/gateways/{gateway_id:.+}",
    "registry.badge_list": "/registry/badges",
    "registry.badge": "/registry/badges/{badge_id:.+}",
    "registry.unplaced": "/registry/unplaced",
    # Admin pages.
    "admin.house": "/admin/house",
    "admin.house.import": "/admin/house/import",
    "admin.house.sites": "/admin/house/sites",
    "admin.house.site": "/admin/house/sites/{site_id:.+}",
    "admin.house.rooms": "/admin/house/rooms",
    "admin.house.room": "/admin/house/rooms/{room_id:.+}",
    "admin.house.beacons": "/admin/house/beacons",
    "admin.house.beacon": "/admin/house/beacons/{beacon_id:.+}",
    "admin.house.devices": "/admin/house/devices",
    "admin.house.gateway": "/admin/house/gateways/{gateway_id:.+}",
    "admin.house.badge": "/admin/house/badges/{badge_id:.+}",
    "admin.house.unplaced": "/admin/house/unplaced",
}


def includeme(config):
    online_seconds = config.registry.settings["stethoscope.activity.online_seconds"]

    def seen_service(context, request):
        return SeenService(request.db, request.registry[ACTIVITY], online_seconds)

    config.register_service_factory(seen_service, SeenService)
    config.register_service_factory(audited(RegistryService), RegistryService)
    config.register_service_factory(
        audited(GatewayTokenService, TOKEN_CACHE), GatewayTokenService
    )
    add_routes(config, ROUTES)
    config.scan(".views")
    config.scan(".pages")
