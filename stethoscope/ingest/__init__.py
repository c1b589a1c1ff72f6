from .activity import ActivityTracker
from .dedup import make_deduplicator
from .interfaces import IDeduplicator
from .services import IngestLimits, IngestService, ReadingQueryService


def includeme(config):
    settings = config.registry.settings
    database = config.registry["stethoscope.database"]
    deduplicator = make_deduplicator(settings)
    tracker = ActivityTracker(database, settings["stethoscope.activity.flush_seconds"])
    limits = IngestLimits.from_settings(settings)
    config.registry["stethoscope.ingest.limits"] = limits
    config.registry["stethoscope.activity"] = tracker
    config.register_service(deduplicator, IDeduplicator)

    def ingest_service(context, request):
        return IngestService(
            session=lambda: request.db,
            deduplicator=deduplicator,
            tracker=tracker,
            transaction_manager=request.tm,
            limits=limits,
        )

    config.register_service_factory(ingest_service, IngestService)
    config.register_service_factory(
        lambda context, request: ReadingQueryService(request.db), ReadingQueryService
    )
    config.add_route("ingest.readings", "/rssi_readings")
