from pyramid.security import NO_PERMISSION_REQUIRED


def includeme(config):
    config.add_jinja2_search_path("stethoscope:dashboard/templates", name=".jinja2")
    config.add_static_view(
        "static",
        "stethoscope:dashboard/static",
        cache_max_age=3600,
        permission=NO_PERMISSION_REQUIRED,
    )
    config.add_route("dashboard.home", "/")
