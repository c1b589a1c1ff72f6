from pyramid.tweens import INGRESS

from ..notify import WebhookNotifier
from ..singletons import DATABASE, ERROR_NOTIFIER, REDIS
from .logging import use_format
from .metrics import METRICS, Metrics, add_counter
from .notifications import ErrorNotifier
from .redis import redis_client
from .renderers import OrjsonRendererFactory
from .services import DatabaseProbe, HealthService


def includeme(config):
    settings = config.registry.settings
    use_format(settings["stethoscope.logging.format"])
    config.add_renderer("json", OrjsonRendererFactory)
    config.add_tween("stethoscope.ops.headers.security_headers_tween_factory")
    # Outermost: it times the whole request and sees the final status.
    config.add_tween("stethoscope.ops.access.request_tween_factory", under=INGRESS)
    # One client (and connection pool) per process for every Redis user.
    url = settings["stethoscope.redis_url"]
    config.registry[REDIS] = (
        redis_client(url, settings["stethoscope.redis.timeout_ms"]) if url else None
    )

    metrics = Metrics(max_gateways=settings["stethoscope.metrics.max_gateways"])
    config.registry[METRICS] = metrics
    errors = ErrorNotifier(
        WebhookNotifier(settings["stethoscope.notify.webhook_url"], name="error"),
        settings["stethoscope.notify.error_interval_minutes"] * 60,
    )
    config.registry[ERROR_NOTIFIER] = errors
    add_counter(
        config,
        "stethoscope_error_notifications",
        "Unexpected errors told to the webhook (sent), or not because one of "
        "their kind was told lately (suppressed).",
        ("outcome",),
        errors.counts,
    )

    probe = DatabaseProbe(
        config.registry[DATABASE].engine,
        settings["stethoscope.health.timeout_ms"] / 1000,
    )

    def health_service(context, request):
        return HealthService(probe, request.registry)

    config.register_service_factory(health_service, HealthService)
    config.add_route("ops.health", "/health")
    config.add_route("ops.metrics", "/metrics")
    config.scan(".views")
    config.scan(".errors")
