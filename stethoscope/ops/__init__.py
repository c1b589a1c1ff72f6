from .redis import redis_client
from .renderers import OrjsonRendererFactory
from .services import DatabaseProbe, HealthService


def includeme(config):
    settings = config.registry.settings
    config.add_renderer("json", OrjsonRendererFactory)
    config.add_tween("stethoscope.ops.headers.security_headers_tween_factory")
    # One client (and connection pool) per process for every Redis user.
    url = settings["stethoscope.redis_url"]
    config.registry["stethoscope.redis"] = (
        redis_client(url, settings["stethoscope.redis.timeout_ms"]) if url else None
    )

    probe = DatabaseProbe(
        config.registry["stethoscope.database"].engine,
        settings["stethoscope.health.timeout_ms"] / 1000,
    )

    def health_service(context, request):
        return HealthService(probe, request.registry)

    config.register_service_factory(health_service, HealthService)
    config.add_route("ops.health", "/health")
    config.scan(".views")
