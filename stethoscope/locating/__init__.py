"""Locating: where badges are, from their readings and the active model.

Builds, once per process, the house facts cache (with the readings' room
probabilities; the alerts' evaluator shares it) and the cache of finished
days (``services``), registers the LocatingService factory, the routes, the
``locating`` member of /health (``stethoscope.health.members``) and the
caches' sizes as metrics.
"""

import functools

from ..audit.services import record
from ..ops.metrics import add_gauge
from ..singletons import ACTIVE_MODELS, HEALTH_MEMBERS, LOCATING_DAYS, LOCATING_FACTS
from .services import (
    DayCache,
    HouseFacts,
    LocatingHealth,
    LocatingService,
    LocatingSettings,
)


def includeme(config):
    registry = config.registry
    settings = LocatingSettings.from_settings(registry.settings)
    facts = HouseFacts(dead_seconds=settings.beacon_dead_seconds)
    days = DayCache(settings.history_cache_days, settings.day_cache_mb << 20)
    registry[LOCATING_FACTS] = facts
    registry[LOCATING_DAYS] = days
    add_gauge(
        config,
        "stethoscope_locating_cache_entries",
        "What this process's locating caches hold: finished days, readings' "
        "room probabilities, smoothed windows.",
        ("cache",),
        lambda: {
            ("days",): len(days),
            ("probabilities",): len(facts.probabilities),
            ("windows",): len(facts.located),
        },
    )
    add_gauge(
        config,
        "stethoscope_locating_day_cache_bytes",
        "The memory the finished days kept in this process hold "
        "(at most stethoscope.locating.day_cache_mb).",
        (),
        lambda: {(): days.nbytes},
    )

    def locating_service(context, request) -> LocatingService:
        return LocatingService(
            request.db,
            request.registry[ACTIVE_MODELS],
            facts,
            days,
            settings,
            audit=functools.partial(record, request),
        )

    config.register_service_factory(locating_service, LocatingService)
    # /health lists each site's dead beacons; ops calls the members it finds.
    # (ops.services.add_health_member, once ops has it, writes the same key.)
    registry.setdefault(HEALTH_MEMBERS, {})["locating"] = LocatingHealth(
        settings.beacon_dead_seconds,
        registry.settings["stethoscope.health.timeout_ms"] / 1000,
    )

    config.add_route("locating.location", "/badges/{badge_id:.+}/location")
    config.add_route("locating.history", "/badges/{badge_id:.+}/location_history")
    config.add_route("locating.stays", "/badges/{badge_id:.+}/stays")
    # GET only: any other method goes on to the registry's site route, and
    # a 405's Allow says so.
    config.add_route(
        "locating.occupancy", "/sites/{site_id:.+}/occupancy", request_method="GET"
    )
    config.scan(".views")
