from pyramid.security import NO_PERMISSION_REQUIRED

from .assets import CACHE_SECONDS, ContentCacheBuster
from .devices import BeaconActivity
from .pages import PrefersHtml


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
    config.add_route("dashboard.home", "/")
    config.add_view_predicate("prefers_html", PrefersHtml)
    config.add_route("dashboard.readings", "/readings")
    config.scan(".pages")
