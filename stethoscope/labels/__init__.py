"""Training runs: the JSON API (/training_runs/…, views.py) and the admin
pages (/admin/training/…, pages.py). Every view needs ADMIN, reads
included: training data says where residents were."""

import functools

from ..audit.services import record
from .services import LabelService


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

    config.scan(".views")
    config.scan(".pages")
