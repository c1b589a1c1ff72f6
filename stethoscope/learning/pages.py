"""Model versions as admin pages (/admin/models); the JSON API is in views.py.

The pages follow the admin pages' pattern (forms with the CSRF token,
POST-redirect-GET with a flash message) and show a refusal of the service
(ModelRefused) as an error message, nothing written. Times are shown in the
site's time zone.
"""

import math
from dataclasses import dataclass, field

from pyramid.httpexceptions import HTTPBadRequest

from ..endpoints import path_params
from ..forms import actor, redirect, refuse_and_flash
from ..ops.params import form_text
from ..pages import page
from ..permissions import ADMIN
from ..registry.models import Site
from ..registry.services import RegistryService, local_time
from ..schemas import IDENTIFIER
from . import services
from .models import ModelActivation, ModelVersion
from .schemas import ModelPath, metrics_of, warnings_of
from .services import ModelRefused, ModelService

# The confusion heat-map's shades: heat-0 … heat-10 in stethoscope.css (the
# Content-Security-Policy forbids inline style attributes).
HEAT_STEPS = 10
MODELS = "stethoscope:learning/templates/models.jinja2"
MODEL = "stethoscope:learning/templates/model.jinja2"


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
    candidates = metrics_of(version).get("candidates")
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
    per_room = metrics_of(version).get("per_room")
    if not isinstance(per_room, dict):
        return []
    return [
        {"room_id": str(room_id), **figures}
        for room_id, figures in sorted(per_room.items())
        if isinstance(figures, dict)
    ]


# ---- shared by the pages ---------------------------------------------------------


def _service(request) -> ModelService:
    return request.find_service(ModelService)


def _registry(request) -> RegistryService:
    return request.find_service(RegistryService)


def _version_or_404(request) -> ModelVersion:
    return _service(request).require(path_params(request, ModelPath).model_id)


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
        "metrics_of": metrics_of,
        "warnings_of": warnings_of,
        **values,
    }


@page("admin.models", ADMIN, MODELS)
def models_page(request):
    service = _service(request)
    versions = service.versions()
    sites = {site.id: site for site in _registry(request).sites()}
    loaded = service.serving()
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
                activations=service.activations(site_id),
                serving=loaded.get(site_id),
            )
            for site_id, site_versions in sorted(by_site.items())
            if site_id in sites
        ],
        sites_without=[
            site for site_id, site in sites.items() if site_id not in by_site
        ],
    )


@page("admin.model", ADMIN, MODEL)
def model_page(request):
    version = _version_or_404(request)
    service = _service(request)
    site = _registry(request).site(version.site_id)
    active = service.active(version.site_id)
    metrics = metrics_of(version)
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
        serving=service.serving().get(version.site_id),
        metrics=metrics,
        warnings=warnings_of(version),
        per_room=per_room_table(version),
        heatmap=confusion_heatmap(metrics),
        calibration=calibration if isinstance(calibration, dict) else {},
        candidates=candidates_table(version),
        cv=metrics.get("cv") if isinstance(metrics.get("cv"), dict) else {},
        rooms=rooms,
    )


def _back(request, version: ModelVersion | None = None):
    # The forms are on both pages; each says where it came from.
    if version is not None and request.POST.get("back") == "version":
        return redirect(request, "admin.model", model_id=version.id)
    return redirect(request, "admin.models")


@page("admin.model.activate", ADMIN, MODEL, request_method="POST")
def activate_form(request):
    version = _version_or_404(request)
    try:
        _service(request).activate(version.id, actor=actor(request))
    except ModelRefused as exc:
        refuse_and_flash(request, f"Nothing changed: {exc}", queue="error")
        return _back(request, version)
    request.session.flash(
        f"Activated {services.label(version)} ({version.algorithm}): it locates "
        f"the site's badges from now on."
    )
    return _back(request, version)


@page("admin.models.rollback", ADMIN, MODELS, request_method="POST")
def rollback_form(request):
    site_id = form_text(request.POST, "site_id").strip()
    if not IDENTIFIER.fullmatch(site_id) or _registry(request).site(site_id) is None:
        raise HTTPBadRequest("site_id: use the Roll back buttons on the models page")
    try:
        activation = _service(request).rollback(site_id, actor=actor(request))
    except ModelRefused as exc:
        refuse_and_flash(request, f"Nothing changed: {exc}", queue="error")
        return _back(request)
    version = activation.model_version
    request.session.flash(
        f"Rolled back: {services.label(version)} ({version.algorithm}) is the "
        f"active model again."
    )
    return _back(request)
