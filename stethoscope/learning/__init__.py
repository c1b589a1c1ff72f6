"""Learning: features, the trainer, the model store and model versions.

Builds, once per process, the model store (``stethoscope.model_dir``) and
ActiveModels, which serves each site's active model and picks up
activations made by other processes; registers the ModelService factory,
the JSON API (/models/…, views.py) and the admin pages (/admin/models,
pages.py). Every view needs ADMIN, reads included: a model's figures name
the rooms residents were in.
"""

import functools

from ..audit.services import record
from ..ops.metrics import add_gauge
from ..routes import add_routes
from ..singletons import ACTIVE_MODELS, DATABASE, MODEL_STORE
from .artifacts import ModelStore
from .services import ActiveModels, ModelService

# The JSON API, then the admin pages. /models/rollback and /models/compare,
# not /sites/{site_id}/…: the registry's /sites/{site_id:.+} would swallow
# those.
ROUTES = {
    "learning.models": "/models",
    "learning.rollback": "/models/rollback",
    "learning.compare": "/models/compare",
    "learning.model": "/models/{model_id:\\d+}",
    "learning.model.activate": "/models/{model_id:\\d+}/activate",
    "admin.models": "/admin/models",
    "admin.models.rollback": "/admin/models/rollback",
    "admin.model": "/admin/models/{model_id:\\d+}",
    "admin.model.activate": "/admin/models/{model_id:\\d+}/activate",
}


def model_service(context, request) -> ModelService:
    return ModelService(
        request.db,
        request.registry[MODEL_STORE],
        audit=functools.partial(record, request),
        active_models=request.registry.get(ACTIVE_MODELS),
    )


def includeme(config):
    settings = config.registry.settings
    store = ModelStore(settings["stethoscope.model_dir"])
    config.registry[MODEL_STORE] = store
    active_models = ActiveModels(
        config.registry[DATABASE],
        store,
        refresh_seconds=settings["stethoscope.models.refresh_seconds"],
    )
    config.registry[ACTIVE_MODELS] = active_models
    add_gauge(
        config,
        "stethoscope_model_active_version",
        "The model version this process serves, per site.",
        ("site",),
        lambda: {
            (site,): status["version"]
            for site, status in active_models.status().items()
            if status["version"] is not None
        },
    )
    config.register_service_factory(model_service, ModelService)

    add_routes(config, ROUTES)
    config.scan(".views")
    config.scan(".pages")
