"""Training runs: the JSON API (/training_runs/…) and the admin pages
(/admin/training/…). Every view needs ADMIN, reads included: training data
says where residents were.

Views are added here rather than by ``@view_config``, so that the package
scan finds nothing of ours when this ``includeme`` has not run.
"""

import functools

from ..audit.services import record
from ..permissions import ADMIN
from . import views
from .services import LabelConflict, LabelError, LabelService, RunNotFound

JSON_VIEWS = (
    ("labels.runs", "GET", views.list_runs),
    ("labels.bulk_start", "POST", views.bulk_start),
    ("labels.bulk_end", "POST", views.bulk_end),
    ("labels.bulk_stats", "GET", views.bulk_stats),
    ("labels.coverage", "GET", views.coverage),
    ("labels.run", "GET", views.run_detail),
    ("labels.run", "DELETE", views.delete_run),
    ("labels.run.cancel", "POST", views.cancel_run),
    ("labels.run.relabel", "POST", views.relabel_run),
)

PAGES = (
    ("admin.training", "GET", views.training_page, "training.jinja2"),
    ("admin.training.start", "POST", views.start_form, "training.jinja2"),
    ("admin.training.end", "POST", views.end_form, None),
    ("admin.training.history", "GET", views.history_page, "history.jinja2"),
    ("admin.training.run", "POST", views.change_run_form, None),
    ("admin.training.coverage", "GET", views.coverage_page, "coverage.jinja2"),
)


def label_service(context, request) -> LabelService:
    return LabelService(request.db, audit=functools.partial(record, request))


def includeme(config):
    config.register_service_factory(label_service, LabelService)

    config.add_route("labels.runs", "/training_runs")
    config.add_route("labels.bulk_start", "/training_runs/bulk_start")
    config.add_route("labels.bulk_end", "/training_runs/bulk_end")
    config.add_route("labels.bulk_stats", "/training_runs/bulk_stats")
    config.add_route("labels.coverage", "/training_runs/coverage")
    config.add_route("labels.run", "/training_runs/{run_id:\\d+}")
    config.add_route("labels.run.cancel", "/training_runs/{run_id:\\d+}/cancel")
    config.add_route("labels.run.relabel", "/training_runs/{run_id:\\d+}/relabel")

    config.add_route("admin.training", "/admin/training")
    config.add_route("admin.training.start", "/admin/training/start")
    config.add_route("admin.training.end", "/admin/training/end")
    config.add_route("admin.training.history", "/admin/training/history")
    config.add_route("admin.training.run", "/admin/training/runs/{run_id:\\d+}")
    config.add_route("admin.training.coverage", "/admin/training/coverage")

    for route_name, method, view in JSON_VIEWS:
        config.add_view(
            view,
            route_name=route_name,
            request_method=method,
            renderer="json",
            permission=ADMIN,
        )
    for route_name, method, view, template in PAGES:
        config.add_view(
            view,
            route_name=route_name,
            request_method=method,
            renderer=f"stethoscope:labels/templates/{template}" if template else None,
            permission=ADMIN,
        )
    # Raised by the service from the JSON views; the pages catch their own.
    config.add_view(views.label_error, context=LabelError, renderer="json")
    config.add_view(views.label_conflict, context=LabelConflict, renderer="json")
    config.add_view(views.run_not_found, context=RunNotFound, renderer="json")
