"""Alerts: conditions at each site that open and clear by themselves.

Builds, once per process, the AlertEvaluator (with its own locating
service over the evaluator's session and clock, sharing the house facts and
readings' probabilities the requests' locating keeps, and the webhook
notifier),
registers the AlertService factory and GET /alerts.
"""

from ..locating.services import (
    DayCache,
    LocatingService,
    LocatingSettings,
)
from ..notify import WebhookNotifier
from ..ops.metrics import add_gauge
from ..singletons import ACTIVE_MODELS, ALERTS_EVALUATOR, DATABASE, LOCATING_FACTS
from .conditions import AlertSettings
from .services import AlertEvaluator, AlertService, open_counts


def includeme(config):
    registry = config.registry
    settings = registry.settings
    database = registry[DATABASE]
    active_models = registry[ACTIVE_MODELS]
    locating_settings = LocatingSettings.from_settings(settings)
    # The requests' cache: a badge's readings are predicted once for both.
    facts = registry[LOCATING_FACTS]
    # Occupancy reads no history: no finished days to keep.
    days = DayCache(0)

    def locating(session, clock) -> LocatingService:
        return LocatingService(
            session, active_models, facts, days, locating_settings, clock=clock
        )

    evaluator = AlertEvaluator(
        database,
        AlertSettings.from_settings(settings),
        active_models=active_models,
        locating=locating,
        notifier=WebhookNotifier(settings["stethoscope.notify.webhook_url"]),
    )
    registry[ALERTS_EVALUATOR] = evaluator
    config.register_service_factory(
        lambda context, request: AlertService(database, evaluator), AlertService
    )
    add_gauge(
        config,
        "stethoscope_alerts_open",
        "Alerts open now, by kind (all sites).",
        ("kind",),
        lambda: open_counts(database),
    )
    config.add_route("alerts.list", "/alerts")
    config.scan(".views")
