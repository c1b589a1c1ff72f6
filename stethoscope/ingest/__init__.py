from pyramid_retry import is_last_attempt

from ..db import request_db_opened
from ..ops.metrics import METRICS, add_counter
from ..ops.services import add_health_member
from ..registry.activity import ActivityTracker
from ..singletons import (
    ACTIVITY,
    DATABASE,
    DEDUPLICATOR,
    INGEST_LIMITS,
    INGEST_WRITER,
    REDIS,
)
from .dedup import make_deduplicator
from .fastpath import retry_attempts
from .interfaces import IDeduplicator
from .services import IngestLimits, IngestService, ReadingQueryService
from .writer import ReadingWriter


def includeme(config):
    settings = config.registry.settings
    database = config.registry[DATABASE]
    deduplicator = make_deduplicator(settings, config.registry[REDIS])
    tracker = ActivityTracker(database, settings["stethoscope.activity.flush_seconds"])
    limits = IngestLimits.from_settings(settings)
    config.registry[INGEST_LIMITS] = limits
    config.registry[ACTIVITY] = tracker
    config.register_service(deduplicator, IDeduplicator)
    add_health_member(config, "dedup", lambda registry: deduplicator.status())
    add_counter(
        config,
        "stethoscope_dedup_fallbacks",
        "Claims made in this process's memory because Redis did not answer.",
        (),
        lambda: {(): getattr(deduplicator, "fallbacks", 0)},
    )
    metrics = config.registry[METRICS]
    # For the ingest fast path (fastpath.py), which runs before Pyramid.
    config.registry[DEDUPLICATOR] = deduplicator
    writer = (
        ReadingWriter(
            database.write_engine,
            turn=database.write_turn,
            checkpoint=database.checkpoint if database.is_sqlite else None,
            on_commit=metrics.group_commit,
        )
        if settings["stethoscope.ingest.group_commit"]
        else None
    )
    config.registry[INGEST_WRITER] = writer
    if writer is not None:
        database.on_dispose(writer.close)
    # Read by pyramid_retry when the configuration is committed.
    settings["retry.activate_hook"] = retry_attempts(
        config.maybe_dotted(settings.get("retry.activate_hook"))
    )

    def ingest_service(request):
        return IngestService(
            session=lambda: request.db,
            deduplicator=deduplicator,
            tracker=tracker,
            transaction_manager=request.tm,
            limits=limits,
            writer=writer,
            session_opened=lambda: request_db_opened(request),
            last_attempt=lambda: is_last_attempt(request),
            metrics=metrics,
        )

    # The ingest hot path takes its service from a request method rather than
    # request.find_service: pyramid_services builds a service container per
    # request, which cost more than the rest of a duplicate POST together
    # (docs/benchmarks.md). Everything off the hot path uses find_service.
    config.add_request_method(ingest_service, "ingest", reify=True)
    config.register_service_factory(
        lambda context, request: ReadingQueryService(request.db), ReadingQueryService
    )
    # One route per method: a view predicate that fails costs an exception
    # per request, and most requests here are POSTs.
    config.add_route("ingest.readings", "/rssi_readings", request_method="POST")
    config.add_route("ingest.readings.page", "/rssi_readings", request_method="GET")
    config.scan(".views")
