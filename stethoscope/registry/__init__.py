from .services import SeenService
from .tokens import GatewayTokenService


def includeme(config):
    online_seconds = config.registry.settings["stethoscope.activity.online_seconds"]

    def seen_service(context, request):
        return SeenService(
            request.db, request.registry["stethoscope.activity"], online_seconds
        )

    config.register_service_factory(seen_service, SeenService)
    config.register_service_factory(
        lambda context, request: GatewayTokenService(
            request.db, request.registry["stethoscope.token_cache"]
        ),
        GatewayTokenService,
    )
    config.add_route("registry.gateways", "/gateways")
    config.add_route("registry.badges", "/badges")
