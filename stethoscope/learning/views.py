"""Model versions over JSON (/models/…) and as admin pages (/admin/models).

Every view needs ADMIN, reads included: a model's figures name the rooms and
its training data says where residents were.

Which version locates a site is the service's business (ModelService): it
refuses to activate an artifact it cannot load (a missing file, a wrong
hash, another scikit-learn) and then the previous model stays active. The
JSON routes answer such a refusal 409 naming the reason; the pages follow
the admin pages' pattern (forms with the CSRF token, POST-redirect-GET with
a flash message) and show the refusal as an error message, nothing written.

``active`` is what the database says (the site's newest activation); what
this process serves is ActiveModels.status(), shown beside it, since a
process loads a newly activated model on its own schedule.

Times on pages are shown in the site's time zone; the API answers in UTC.
Views are added in ``includeme`` rather than by ``@view_config``, so that
the package scan finds nothing of ours when this ``includeme`` has not run.
"""

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPNotFound,
    HTTPSeeOther,
)

from ..ingest.schemas import (
    IDENTIFIER,
    FieldError,
    Identifier,
    InvalidPayload,
    validated_body,
)
from ..ops.params import form_text, parse_id
from ..permissions import ADMIN
from ..registry.models import Site
from ..registry.services import RegistryService, local_time
from . import services
from .models import ModelActivation, ModelVersion
from .services import ModelNotFound, ModelRefused, ModelService, activation_json

# Bodies here name one site: anything bigger is a mistake.
MAX_BODY_BYTES = 4 * 1024
# model_versions.id is an INTEGER: a larger id cannot exist.
MAX_MODEL_ID = 2**31 - 1
# Activations listed per site, newest first.
HISTORY_ROWS = 20
# The confusion heat-map's shades: heat-0 … heat-10 in stethoscope.css (the
# Content-Security-Policy forbids inline style attributes).
HEAT_STEPS = 10
# The figures of a version's list entry; the rest only on its own route.
SUMMARY_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "log_loss",
    "smoothed",
    "selected_by",
    "training_seconds",
)
TEMPLATES = "stethoscope:learning/templates/"


class RollbackIn(BaseModel):
    """Roll a site back to the model that was active before its current one."""

    model_config = ConfigDict(extra="forbid")

    site_id: Identifier


# ---- presenting versions ---------------------------------------------------------


def _metrics(version: ModelVersion) -> dict:
    # The trainer writes the metrics; a version written by an older trainer
    # (or by hand) may lack any of them, and the pages must still render.
    return version.metrics if isinstance(version.metrics, dict) else {}


def warnings_of(version: ModelVersion) -> list[str]:
    warnings = _metrics(version).get("warnings")
    return [str(w) for w in warnings] if isinstance(warnings, list) else []


def metrics_summary(version: ModelVersion) -> dict:
    """The headline figures of a version and how many warnings it has."""
    metrics = _metrics(version)
    summary = {key: metrics[key] for key in SUMMARY_KEYS if key in metrics}
    if isinstance(summary.get("smoothed"), dict):
        # The smoothed report repeats the per-room tables: headline only.
        summary["smoothed"] = {
            key: summary["smoothed"][key]
            for key in ("accuracy", "balanced_accuracy")
            if key in summary["smoothed"]
        }
    summary["warnings"] = len(warnings_of(version))
    return summary


def version_json(version: ModelVersion, *, active: bool, full: bool = False) -> dict:
    """The API form of a version, with ``active``; its metrics summarised
    unless ``full``."""
    return {
        **services.version_json(version),
        "active": active,
        "metrics": _metrics(version) if full else metrics_summary(version),
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def serving_json(status: dict | None) -> dict | None:
    """What this process serves for a site (ActiveModels.status()), as JSON."""
    if status is None:
        return None
    return {key: _json_value(value) for key, value in status.items()}


@dataclass
class HeatCell:
    count: int
    share: float  # of the row (the true room): recall on the diagonal
    heat: int  # 0 … HEAT_STEPS
    diagonal: bool


@dataclass
class HeatRow:
    room_id: str
    total: int
    cells: list[HeatCell] = field(default_factory=list)


def confusion_heatmap(metrics: dict) -> tuple[list[str], list[HeatRow]] | None:
    """The confusion matrix with each cell's shade, or None when it is unusable.

    Rows are the true rooms, columns the predicted ones. A cell's shade is
    its share of its row, so that a rarely visited room's mistakes show as
    plainly as a busy room's.
    """
    confusion = metrics.get("confusion")
    if not isinstance(confusion, dict):
        return None
    rooms = confusion.get("rooms")
    matrix = confusion.get("matrix")
    if (
        not isinstance(rooms, list)
        or not isinstance(matrix, list)
        or len(matrix) != len(rooms)
        or not all(
            isinstance(row, list)
            and len(row) == len(rooms)
            and all(isinstance(n, int | float) and n >= 0 for n in row)
            for row in matrix
        )
    ):
        return None
    rows = []
    for i, (room_id, counts) in enumerate(zip(rooms, matrix, strict=True)):
        total = sum(counts)
        row = HeatRow(str(room_id), int(total))
        for j, count in enumerate(counts):
            share = count / total if total else 0.0
            row.cells.append(
                HeatCell(
                    int(count), share, math.floor(share * HEAT_STEPS + 0.5), i == j
                )
            )
        rows.append(row)
    return [str(room) for room in rooms], rows


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def candidates_table(version: ModelVersion) -> list[dict]:
    """The algorithms tried, best first by balanced log loss when known."""
    candidates = _metrics(version).get("candidates")
    if not isinstance(candidates, dict):
        return []
    rows = [
        {"algorithm": str(name), "selected": name == version.algorithm, **figures}
        for name, figures in candidates.items()
        if isinstance(figures, dict)
    ]
    return sorted(
        rows,
        key=lambda row: (
            not _finite(row.get("balanced_log_loss")),
            row.get("balanced_log_loss")
            if _finite(row.get("balanced_log_loss"))
            else 0,
            row["algorithm"],
        ),
    )


def per_room_table(version: ModelVersion) -> list[dict]:
    per_room = _metrics(version).get("per_room")
    if not isinstance(per_room, dict):
        return []
    return [
        {"room_id": str(room_id), **figures}
        for room_id, figures in sorted(per_room.items())
        if isinstance(figures, dict)
    ]


# ---- shared by the views ---------------------------------------------------------


def _service(request) -> ModelService:
    return request.find_service(ModelService)


def _registry(request) -> RegistryService:
    return request.find_service(RegistryService)


def _actor(request) -> str:
    return request.authenticated_userid or "-"


def _serving(request) -> dict:
    """site_id → what this process serves; empty when nothing is loaded."""
    active_models = request.registry.get("stethoscope.active_models")
    return active_models.status() if active_models is not None else {}


def _model_id(request) -> int:
    raw = request.matchdict["model_id"]
    model_id = parse_id(raw, MAX_MODEL_ID)
    if model_id is None:
        raise HTTPNotFound(f"no model version {raw[:20]}")
    return model_id


def _version_or_404(request) -> ModelVersion:
    model_id = _model_id(request)
    version = _service(request).get(model_id)
    if version is None:
        raise HTTPNotFound(f"no model version {model_id}")
    return version


def _site_or_invalid(request, name: str, site_id: str) -> Site:
    site = _registry(request).site(site_id)
    if site is None:
        raise InvalidPayload([FieldError(name, f"no site {site_id!r}")])
    return site


def _site_param(request) -> str | None:
    value = request.GET.get("site_id", "").strip()
    if not value:
        return None
    if not IDENTIFIER.fullmatch(value):
        raise InvalidPayload([FieldError("site_id", "is not a valid id")])
    return _site_or_invalid(request, "site_id", value).id


def _version_param(request, name: str) -> ModelVersion:
    raw = request.GET.get(name, "").strip()
    if not raw:
        raise InvalidPayload([FieldError(name, "is required: a model version id")])
    model_id = parse_id(raw, MAX_MODEL_ID, 1)
    if model_id is None:
        raise InvalidPayload([FieldError(name, "must be a model version id")])
    version = _service(request).get(model_id)
    if version is None:
        raise InvalidPayload([FieldError(name, f"no model version {raw}")])
    return version


def _body(request, model: type[BaseModel]) -> BaseModel:
    return validated_body(request, model, MAX_BODY_BYTES)


def _active_ids(service: ModelService, site_ids) -> dict[str, int | None]:
    active = {site_id: service.active(site_id) for site_id in site_ids}
    return {site_id: v.id if v is not None else None for site_id, v in active.items()}


# ---- errors ----------------------------------------------------------------------


def model_refused(exc, request):
    """409: the service would not activate or roll back; nothing changed."""
    request.response.status = 409
    return {"status": 409, "error": "conflict", "message": str(exc)}


def model_not_found(exc, request):
    # A version deleted between the view's look-up and the service's.
    request.response.status = 404
    return {"status": 404, "error": "not_found", "message": str(exc)}


# ---- JSON API --------------------------------------------------------------------


def list_models(request):
    service = _service(request)
    site_id = _site_param(request)
    versions = service.versions(site_id)
    site_ids = [site_id] if site_id else sorted({v.site_id for v in versions})
    active = _active_ids(service, site_ids)
    serving = _serving(request)
    return {
        "versions": [
            version_json(v, active=active.get(v.site_id) == v.id) for v in versions
        ],
        "sites": [
            {
                "site_id": site,
                "active_version_id": active[site],
                "serving": serving_json(serving.get(site)),
                "activations": [
                    activation_json(a)
                    for a in service.activations(site, limit=HISTORY_ROWS)
                ],
            }
            for site in site_ids
        ],
    }


def model_detail(request):
    service = _service(request)
    version = _version_or_404(request)
    active = service.active(version.site_id)
    return version_json(
        version, active=active is not None and active.id == version.id, full=True
    )


def activate_model(request):
    version = _version_or_404(request)
    activation = _service(request).activate(version.id, actor=_actor(request))
    return {
        "activation": activation_json(activation),
        "version": version_json(version, active=True),
    }


def rollback_models(request):
    body = _body(request, RollbackIn)
    site = _site_or_invalid(request, "site_id", body.site_id)
    service = _service(request)
    activation = service.rollback(site.id, actor=_actor(request))
    return {
        "activation": activation_json(activation),
        "version": version_json(activation.model_version, active=True),
    }


def compare_models(request):
    a = _version_param(request, "a")
    b = _version_param(request, "b")
    return _service(request).compare(a.id, b.id)


# ---- pages -----------------------------------------------------------------------


@dataclass
class SiteModels:
    """One site's part of the models page."""

    site: Site
    versions: list[ModelVersion]
    active: ModelVersion | None
    activations: list[ModelActivation]
    serving: dict | None


def _page(request, **values) -> dict:
    return {
        "flashes": request.session.pop_flash(),
        "errors": request.session.pop_flash("error"),
        "local_time": local_time,
        "metrics_of": _metrics,
        "warnings_of": warnings_of,
        **values,
    }


def models_page(request):
    service = _service(request)
    versions = service.versions()
    sites = {site.id: site for site in _registry(request).sites()}
    serving = _serving(request)
    by_site: dict[str, list[ModelVersion]] = {}
    for version in versions:
        by_site.setdefault(version.site_id, []).append(version)
    return _page(
        request,
        sites=[
            SiteModels(
                site=sites[site_id],
                versions=site_versions,
                active=service.active(site_id),
                activations=service.activations(site_id, limit=HISTORY_ROWS),
                serving=serving.get(site_id),
            )
            for site_id, site_versions in sorted(by_site.items())
            if site_id in sites
        ],
        sites_without=[
            site for site_id, site in sites.items() if site_id not in by_site
        ],
    )


def model_page(request):
    version = _version_or_404(request)
    service = _service(request)
    site = _registry(request).site(version.site_id)
    active = service.active(version.site_id)
    metrics = _metrics(version)
    rooms = {room.id: room for room in _registry(request).rooms(version.site_id)}
    calibration = metrics.get("calibration")
    return _page(
        request,
        version=version,
        site=site,
        site_name=site.name if site is not None else version.site_id,
        timezone=site.timezone if site is not None else None,
        active=active,
        is_active=active is not None and active.id == version.id,
        serving=_serving(request).get(version.site_id),
        metrics=metrics,
        warnings=warnings_of(version),
        per_room=per_room_table(version),
        heatmap=confusion_heatmap(metrics),
        calibration=calibration if isinstance(calibration, dict) else {},
        candidates=candidates_table(version),
        cv=metrics.get("cv") if isinstance(metrics.get("cv"), dict) else {},
        rooms=rooms,
    )


def _back(request, version: ModelVersion | None = None) -> HTTPSeeOther:
    # The forms are on both pages; each says where it came from.
    if version is not None and request.POST.get("back") == "version":
        return HTTPSeeOther(
            location=request.route_url("admin.model", model_id=version.id)
        )
    return HTTPSeeOther(location=request.route_url("admin.models"))


def _refused(request, message: str) -> None:
    # The service checks before it changes anything; dooming the transaction
    # makes "nothing written" hold whatever it did first.
    request.tm.doom()
    request.session.flash(message, queue="error")


def activate_form(request):
    version = _version_or_404(request)
    try:
        _service(request).activate(version.id, actor=_actor(request))
    except ModelRefused as exc:
        _refused(request, f"Nothing changed: {exc}")
        return _back(request, version)
    request.session.flash(
        f"Activated {services.label(version)} ({version.algorithm}): it locates "
        f"the site's badges from now on."
    )
    return _back(request, version)


def rollback_form(request):
    site_id = form_text(request.POST, "site_id").strip()
    if not IDENTIFIER.fullmatch(site_id) or _registry(request).site(site_id) is None:
        raise HTTPBadRequest("site_id: use the Roll back buttons on the models page")
    try:
        activation = _service(request).rollback(site_id, actor=_actor(request))
    except ModelRefused as exc:
        _refused(request, f"Nothing changed: {exc}")
        return _back(request)
    version = activation.model_version
    request.session.flash(
        f"Rolled back: {services.label(version)} ({version.algorithm}) is the "
        f"active model again."
    )
    return _back(request)


# ---- routes ----------------------------------------------------------------------

JSON_VIEWS = (
    ("learning.models", "GET", list_models),
    ("learning.model", "GET", model_detail),
    ("learning.model.activate", "POST", activate_model),
    ("learning.rollback", "POST", rollback_models),
    ("learning.compare", "GET", compare_models),
)

PAGES = (
    ("admin.models", "GET", models_page, "models.jinja2"),
    ("admin.model", "GET", model_page, "model.jinja2"),
    ("admin.model.activate", "POST", activate_form, None),
    ("admin.models.rollback", "POST", rollback_form, None),
)


def includeme(config):
    # /models/rollback and /models/compare, not /sites/{site_id}/…: the
    # registry's /sites/{site_id:.+} would swallow those.
    config.add_route("learning.models", "/models")
    config.add_route("learning.rollback", "/models/rollback")
    config.add_route("learning.compare", "/models/compare")
    config.add_route("learning.model", "/models/{model_id:\\d+}")
    config.add_route("learning.model.activate", "/models/{model_id:\\d+}/activate")

    config.add_route("admin.models", "/admin/models")
    config.add_route("admin.models.rollback", "/admin/models/rollback")
    config.add_route("admin.model", "/admin/models/{model_id:\\d+}")
    config.add_route("admin.model.activate", "/admin/models/{model_id:\\d+}/activate")

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
            renderer=TEMPLATES + template if template else None,
            permission=ADMIN,
        )
    # Raised by the service from the JSON views; the pages catch their own.
    config.add_view(model_refused, context=ModelRefused, renderer="json")
    config.add_view(model_not_found, context=ModelNotFound, renderer="json")
