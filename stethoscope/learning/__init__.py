"""Learning: features, the trainer, the model store and model versions.

Builds, once per process, the model store (``stethoscope.model_dir``) and
ActiveModels, which serves each site's active model and picks up
activations made by other processes; registers the ModelService factory.
"""

import functools

from ..audit.services import record
from .artifacts import ModelStore
from .services import ActiveModels, ModelService


def model_service(context, request) -> ModelService:
    return ModelService(
        request.db,
        request.registry["stethoscope.model_store"],
        audit=functools.partial(record, request),
    )


def includeme(config):
    settings = config.registry.settings
    store = ModelStore(settings["stethoscope.model_dir"])
    config.registry["stethoscope.model_store"] = store
    config.registry["stethoscope.active_models"] = ActiveModels(
        config.registry["stethoscope.database"],
        store,
        refresh_seconds=settings["stethoscope.models.refresh_seconds"],
    )
    config.register_service_factory(model_service, ModelService)
    config.include(".views")
