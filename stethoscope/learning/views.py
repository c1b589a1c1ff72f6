"""Model versions over JSON (/models/…); the admin pages are in pages.py.

Every endpoint needs ADMIN, reads included: a model's figures name the rooms
and its training data says where residents were.

Which version locates a site is the service's business (ModelService): it
refuses to activate an artifact it cannot load (a missing file, a wrong
hash, another scikit-learn) and then the previous model stays active; such
a refusal is a 409 naming the reason (ModelRefused).

``active`` is what the database says (the site's newest activation); what
this process serves is ActiveModels.status(), shown beside it, since a
process loads a newly activated model on its own schedule. The API answers
in UTC.
"""

import functools

from ..endpoints import endpoint
from ..errors import ValidationError
from ..permissions import ADMIN
from ..registry.services import RegistryService
from .schemas import (
    ActivationResult,
    CompareQuery,
    ModelActivation,
    ModelComparison,
    ModelList,
    ModelPath,
    ModelServing,
    ModelsQuery,
    ModelVersion,
    RollbackIn,
    SiteModels,
)
from .services import ModelService

NOT_FOUND = "No model version with this id."
REFUSED = (
    "Refused, nothing changed: the artifact cannot be loaded (missing, "
    "changed since it was written, made by another scikit-learn), the "
    "version is active already, or there is nothing to roll back to. The "
    "message says which; the active model stays active."
)

models_endpoint = functools.partial(endpoint, permission=ADMIN, tags=("models",))


def _service(request) -> ModelService:
    return request.find_service(ModelService)


def _actor(request) -> str:
    return request.authenticated_userid or "-"


def _known_site(request, site_id: str) -> str:
    if request.find_service(RegistryService).site(site_id) is None:
        raise ValidationError("site_id", f"no site {site_id!r}")
    return site_id


def _version(request, name: str, version_id: int):
    version = _service(request).get(version_id)
    if version is None:
        raise ValidationError(name, f"no model version {version_id}")
    return version


@models_endpoint(
    route_name="learning.models",
    request_method="GET",
    summary="Model versions, newest first, with each site's active model",
    description="Each version with its headline figures and whether it is its "
    "site's active model; each site with its activation history and what this "
    "server process has loaded.",
    query=ModelsQuery,
    response=ModelList,
)
def list_models(request):
    service = _service(request)
    site_id = request.validated.query.site_id
    if site_id is not None:
        _known_site(request, site_id)
    versions = service.versions(site_id)
    site_ids = [site_id] if site_id else sorted({v.site_id for v in versions})
    active = {site: service.active(site) for site in site_ids}
    active_ids = {site: v.id if v is not None else None for site, v in active.items()}
    loaded = service.serving()
    return ModelList(
        versions=[
            ModelVersion.of(v, active=active_ids.get(v.site_id) == v.id)
            for v in versions
        ],
        sites=[
            SiteModels(
                site_id=site,
                active_version_id=active_ids[site],
                serving=ModelServing(**loaded[site]) if site in loaded else None,
                activations=[ModelActivation.of(a) for a in service.activations(site)],
            )
            for site in site_ids
        ],
    )


@models_endpoint(
    route_name="learning.model",
    request_method="GET",
    summary="One model version with all its metrics",
    path=ModelPath,
    response=ModelVersion,
    errors={404: NOT_FOUND},
)
def get_model(request):
    service = _service(request)
    version = service.require(request.validated.path.model_id)
    active = service.active(version.site_id)
    return ModelVersion.of(
        version, active=active is not None and active.id == version.id, full=True
    )


@models_endpoint(
    route_name="learning.model.activate",
    request_method="POST",
    summary="Make this version its site's active model",
    description="The artifact is loaded and verified first; if it cannot be, "
    "the answer is 409 and the previous model stays active. Recorded in the "
    "audit log. No body.",
    path=ModelPath,
    response=ActivationResult,
    errors={404: NOT_FOUND, 409: REFUSED},
)
def activate_model(request):
    activation = _service(request).activate(
        request.validated.path.model_id, actor=_actor(request)
    )
    return ActivationResult.of(activation)


@models_endpoint(
    route_name="learning.rollback",
    request_method="POST",
    summary="Go back to the site's previously active model",
    description="Activates again the version that was active before the "
    "current one (a new activation row, action rollback); the history itself "
    "is never changed.",
    body=RollbackIn,
    response=ActivationResult,
    errors={409: REFUSED},
)
def rollback_model(request):
    site_id = _known_site(request, request.validated.body.site_id)
    activation = _service(request).rollback(site_id, actor=_actor(request))
    return ActivationResult.of(activation)


@models_endpoint(
    route_name="learning.compare",
    request_method="GET",
    summary="Two versions side by side",
    query=CompareQuery,
    response=ModelComparison,
)
def compare_models(request):
    query = request.validated.query
    a = _version(request, "a", query.a)
    b = _version(request, "b", query.b)
    return _service(request).compare(a.id, b.id)
