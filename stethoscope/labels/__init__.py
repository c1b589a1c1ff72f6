"""Training runs: the JSON API (/training_runs/…, views.py) and the admin
pages (/admin/training/…, pages.py). Every view needs ADMIN, reads
included: training data says where residents were."""

from ..audit.services import audited
from ..routes import add_routes
from .services import LabelService

# The JSON API, then the admin pages.
ROUTES = {
    "labels.runs": "/training_runs",
    "labels.bulk_start": "/training_runs/bulk_start",
    "labels.bulk_end": "/training_runs/bulk_end",
    "labels.bulk_stats": "/training_runs/bulk_stats",
    "labels.coverage": "/training_runs/coverage",
    "labels.run": "/training_runs/{run_id:\\d+}",
    "labels.run.cancel": "/training_runs/{run_id:\\d+}/cancel",
    "labels.run.relabel": "/training_runs/{run_id:\\d+}/relabel",
    "admin.training": "/admin/training",
    "admin.training.start": "/admin/training/start",
    "admin.training.end": "/admin/training/end",
    "admin.training.history": "/admin/training/history",
    "admin.training.run": "/admin/training/runs/{run_id:\\d+}",
    "admin.training.coverage": "/admin/training/coverage",
}


def includeme(config):
    config.register_service_factory(audited(LabelService), LabelService)
    add_routes(config, ROUTES)
    config.scan(".views")
    config.scan(".pages")
