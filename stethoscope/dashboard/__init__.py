import datetime

from pyramid.security import NO_PERMISSION_REQUIRED

from ..learning.services import ModelService
from ..registry.services import RegistryService, SeenService
from .assets import CACHE_SECONDS, ContentCacheBuster
from .devices import BeaconActivity
from .pages import PrefersHtml
from .services import DashboardService


def dashboard_service(context, request) -> DashboardService:
    return DashboardService(
        request.db,
        request.find_service(RegistryService),
        request.find_service(SeenService),
        request.find_service(ModelService),
        # "Heard lately" as the board's occupancy means it.
        recent=datetime.timedelta(
            seconds=request.registry.settings["stethoscope.locating.recent_seconds"]
        ),
    )


def includeme(config):
    config.add_jinja2_search_path("stethoscope:dashboard/templates", name=".jinja2")
    config.add_static_view(
        "static",
        "stethoscope:dashboard/static",
        cache_max_age=CACHE_SECONDS,
        permission=NO_PERMISSION_REQUIRED,
    )
    config.add_cache_buster(
        "stethoscope:dashboard/static/",
        ContentCacheBuster("stethoscope", "dashboard/static"),
    )
    config.register_service_factory(
        lambda context, request: BeaconActivity(request.db), BeaconActivity
    )
    config.register_service_factory(dashboard_service, DashboardService)
    config.add_route("dashboard.home", "/")
    # After locating's /badges/{id}/location, stays and location_history.
    config.add_route("dashboard.badge_history_csv", "/badges/{badge_id:.+}/history.csv")
    config.add_route("dashboard.badge_history", "/badges/{badge_id:.+}/history")
    config.add_route("dashboard.badge_now", "/badges/{badge_id:.+}/now")
    config.add_route("dashboard.badge", "/badges/{badge_id:.+}")
    config.add_view_predicate("prefers_html", PrefersHtml)
    config.add_route("dashboard.readings", "/readings")
    config.scan(".pages")
    config.scan(".views")
