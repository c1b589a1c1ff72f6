from ..ingest.interfaces import IDeduplicator
from .renderers import OrjsonRendererFactory
from .services import HealthService


def includeme(config):
    config.add_renderer("json", OrjsonRendererFactory)

    def health_service(context, request):
        return HealthService(request.db, request.find_service(IDeduplicator))

    config.register_service_factory(health_service, HealthService)
    config.add_route("ops.health", "/health")
