"""Training runs over JSON (/training_runs/…) and as admin pages (/admin/training).

The JSON routes mirror the original system's ``bulk_start``, ``bulk_end`` and
``bulk_stats``. Bodies are validated by the pydantic models below, so errors
name the field. Pages follow the admin pages' pattern: forms with the CSRF
token, POST-redirect-GET with a flash message, and the reason shown (400 or
409) when the service refuses, with nothing written.

Times on pages are shown in the time zone of the run's site (room → site →
IANA zone), with the zone's abbreviation, never the server's.
"""

import datetime
import zoneinfo
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt
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
from ..ops.params import form_text, form_texts, parse_id
from ..registry.models import Room
from .services import (
    MAX_BADGES,
    LabelConflict,
    LabelError,
    LabelService,
    RunNotFound,
    run_json,
)

# Bodies here are a few ids: anything bigger is a mistake.
MAX_BODY_BYTES = 64 * 1024
# The live page polls this often; a badge advertises about once a second.
POLL_MS = 2000
# Badges offered on the start form: heard within this long.
RECENT_BADGES = datetime.timedelta(minutes=10)
PAGE_LIMIT_MAX = 500
PAGE_LIMIT_DEFAULT = 100
HISTORY_ROWS = 50
MAX_STATS_RUNS = 200

# training_runs.id is an INTEGER: a larger id cannot exist.
MAX_RUN_ID = 2**31 - 1

RunId = Annotated[StrictInt, Field(ge=1, le=MAX_RUN_ID)]


class BulkStartIn(BaseModel):
    """Start one run per badge, all in one room at one moment."""

    model_config = ConfigDict(extra="forbid")

    badge_ids: list[Identifier] = Field(min_length=1, max_length=MAX_BADGES)
    room_id: Identifier


class BulkEndIn(BaseModel):
    """End open runs: by badge (its open run) or by run id; not both."""

    model_config = ConfigDict(extra="forbid")

    badge_ids: list[Identifier] | None = Field(
        None, min_length=1, max_length=MAX_BADGES
    )
    run_ids: list[RunId] | None = Field(None, min_length=1, max_length=MAX_BADGES)


class RelabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: Identifier


def _body(request, model: type[BaseModel]) -> BaseModel:
    return validated_body(request, model, MAX_BODY_BYTES)


def _service(request) -> LabelService:
    return request.find_service(LabelService)


def _actor(request) -> str:
    return request.authenticated_userid or "-"


def _run_id(request) -> int:
    raw = request.matchdict["run_id"]
    run_id = parse_id(raw, MAX_RUN_ID)
    if run_id is None:
        raise HTTPNotFound(f"no training run {raw[:20]}")
    return run_id


def _int_param(request, name: str, minimum: int, maximum: int, default: int) -> int:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    value = parse_id(raw, maximum, minimum)
    if value is None:
        raise InvalidPayload(
            [FieldError(name, f"must be a whole number from {minimum} to {maximum}")]
        )
    return value


def _id_param(request, name: str) -> str | None:
    value = request.GET.get(name, "").strip()
    if value and not IDENTIFIER.fullmatch(value):
        raise InvalidPayload([FieldError(name, "is not a valid id")])
    return value or None


# ---- errors ------------------------------------------------------------------


def label_error(exc, request):
    request.response.status = 400
    return {
        "status": 400,
        "error": "invalid",
        "message": str(exc),
        "errors": [{"field": exc.field, "message": exc.message}],
    }


def label_conflict(exc, request):
    request.response.status = 409
    return {
        "status": 409,
        "error": "conflict",
        "message": exc.message,
        "badge_id": exc.badge_id,
        "run_id": exc.run_id,
    }


def run_not_found(exc, request):
    request.response.status = 404
    return {"status": 404, "error": "not_found", "message": str(exc)}


# ---- JSON API ------------------------------------------------------------------


def bulk_start(request):
    body = _body(request, BulkStartIn)
    runs = _service(request).start(body.badge_ids, body.room_id, _actor(request))
    request.response.status = 201
    return {"runs": [run_json(run) for run in runs]}


def bulk_end(request):
    body = _body(request, BulkEndIn)
    if (body.badge_ids is None) == (body.run_ids is None):
        raise InvalidPayload([FieldError("body", "give either badge_ids or run_ids")])
    results = _service(request).end(
        run_ids=body.run_ids, badge_ids=body.badge_ids, actor=_actor(request)
    )
    return {"runs": [result.as_json() for result in results]}


def bulk_stats(request):
    raw = request.GET.get("run_ids", "").strip()
    run_ids = None
    if raw:
        parts = raw.split(",", MAX_STATS_RUNS)
        run_ids = [parse_id(part.strip(), MAX_RUN_ID) for part in parts]
        if len(run_ids) > MAX_STATS_RUNS or None in run_ids:
            raise InvalidPayload(
                [
                    FieldError(
                        "run_ids",
                        f"must be up to {MAX_STATS_RUNS} run ids separated by commas",
                    )
                ]
            )
    service = _service(request)
    return {
        "runs": [result.as_json() for result in service.stats(run_ids)],
        "silent_after_s": service.SILENT_AFTER.total_seconds(),
    }


def list_runs(request):
    status = request.GET.get("status", "").strip() or None
    if status not in (None, "open", "completed", "cancelled"):
        raise InvalidPayload(
            [FieldError("status", "must be open, completed or cancelled")]
        )
    limit = _int_param(request, "limit", 1, PAGE_LIMIT_MAX, PAGE_LIMIT_DEFAULT)
    offset = _int_param(request, "offset", 0, 2**31 - 1, 0)
    runs, total = _service(request).page(
        status=status,
        room_id=_id_param(request, "room_id"),
        badge_id=_id_param(request, "badge_id"),
        limit=limit,
        offset=offset,
    )
    return {
        "runs": [run_json(run) for run in runs],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def run_detail(request):
    service = _service(request)
    return service.stats_of([service.get(_run_id(request))])[0].as_json()


def delete_run(request):
    return {"deleted": _service(request).delete(_run_id(request), _actor(request))}


def cancel_run(request):
    return run_json(_service(request).cancel(_run_id(request), _actor(request)))


def relabel_run(request):
    body = _body(request, RelabelIn)
    return run_json(
        _service(request).relabel(_run_id(request), body.room_id, _actor(request))
    )


def coverage(request):
    service = _service(request)
    return {
        "rooms": [
            room.as_json() for room in service.coverage(_id_param(request, "site_id"))
        ],
        "thresholds": {
            "min_runs": service.MIN_RUNS,
            "min_readings": service.MIN_READINGS,
            "imbalance": service.IMBALANCE,
        },
    }


# ---- pages ---------------------------------------------------------------------


def _zone(name: str | None):
    try:
        return zoneinfo.ZoneInfo(name) if name else datetime.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def local_time(moment: datetime.datetime | None, zone_name: str | None) -> str:
    """``2026-11-28 22:00:00 NZDT``: ``moment`` in the zone, with its abbreviation."""
    if moment is None:
        return ""
    return moment.astimezone(_zone(zone_name)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _room_zone(room: Room | None) -> str:
    return room.site.timezone if room is not None and room.site else "UTC"


def _page(request, **values) -> dict:
    return {
        "flashes": request.session.pop_flash(),
        "local_time": local_time,
        "room_zone": _room_zone,
        **values,
    }


def _training_page(request, *, form=None, error=None) -> dict:
    service = _service(request)
    stats = service.stats()
    busy = {result.run.badge_id for result in stats}
    return _page(
        request,
        stats=stats,
        rooms=service.rooms(),
        badges=service.recent_badges(RECENT_BADGES, busy=busy),
        recent_minutes=int(RECENT_BADGES.total_seconds() // 60),
        form=form or {"room_id": "", "badge_ids": [], "other_badges": ""},
        error=error,
        poll_ms=POLL_MS,
        silent_after_s=int(service.SILENT_AFTER.total_seconds()),
    )


def training_page(request):
    return _training_page(request)


def _refuse(request, status: int) -> None:
    request.tm.doom()
    request.response.status = status


def start_form(request):
    room_id = form_text(request.POST, "room_id").strip()
    picked = [value.strip() for value in form_texts(request.POST, "badge_ids")]
    other = form_text(request.POST, "other_badges")[:2000]
    badge_ids = [b for b in picked if b] + [
        b for b in other.replace(",", " ").split() if b
    ]
    form = {"room_id": room_id, "badge_ids": picked, "other_badges": other}
    try:
        runs = _service(request).start(badge_ids, room_id, _actor(request))
    except LabelError as exc:
        _refuse(request, 400)
        return _training_page(request, form=form, error=exc.message)
    except LabelConflict as exc:
        _refuse(request, 409)
        return _training_page(request, form=form, error=exc.message)
    room = runs[0].room
    request.session.flash(
        f"Started {len(runs)} run{'s' if len(runs) != 1 else ''} in {room.name} "
        f"({', '.join(run.badge_id for run in runs)}) at "
        f"{local_time(runs[0].started_at, _room_zone(room))}."
    )
    return HTTPSeeOther(location=request.route_url("admin.training"))


def end_form(request):
    service = _service(request)
    if request.POST.get("all") == "true":
        run_ids = [run.id for run in service.open_runs()]
        if not run_ids:
            request.session.flash("No open runs to end.")
            return HTTPSeeOther(location=request.route_url("admin.training"))
    else:
        run_id = parse_id(form_text(request.POST, "run_id"), MAX_RUN_ID)
        if run_id is None:
            raise HTTPBadRequest("run_id: use the End buttons on the training page")
        run_ids = [run_id]
    try:
        results = service.end(run_ids=run_ids, actor=_actor(request))
    except RunNotFound as exc:
        raise HTTPNotFound(str(exc)) from None
    except (LabelConflict, LabelError) as exc:
        request.tm.doom()
        request.session.flash(f"Nothing ended: {exc.message}")
        return HTTPSeeOther(location=request.route_url("admin.training"))
    for result in results:
        note = f" Warning: {'; '.join(result.warnings)}." if result.warnings else ""
        request.session.flash(
            f"Ended run {result.run.id} ({result.run.badge_id} in "
            f"{result.run.room.name}): {result.readings} readings.{note}"
        )
    return HTTPSeeOther(location=request.route_url("admin.training"))


def history_page(request):
    status = request.GET.get("status", "").strip()
    if status not in ("", "completed", "cancelled"):
        raise HTTPBadRequest("status: completed or cancelled")
    page = _int_param(request, "page", 1, 100_000, 1)
    service = _service(request)
    runs, total = service.page(
        status=status or "finished",
        limit=HISTORY_ROWS,
        offset=(page - 1) * HISTORY_ROWS,
    )
    return _page(
        request,
        stats=service.stats_of(runs),
        rooms=service.rooms(),
        status=status,
        page=page,
        pages=max(1, -(-total // HISTORY_ROWS)),
        total=total,
    )


def change_run_form(request):
    service = _service(request)
    run_id = _run_id(request)
    change = request.POST.get("change", "")
    try:
        if change == "cancel":
            run = service.cancel(run_id, _actor(request))
            message = (
                f"Cancelled run {run.id} ({run.badge_id}): it is not training data."
            )
        elif change == "delete":
            gone = service.delete(run_id, _actor(request))
            message = (
                f"Deleted run {gone['id']} ({gone['badge_id']}); its readings "
                "are kept, unlabelled."
            )
        elif change == "relabel":
            run = service.relabel(
                run_id, form_text(request.POST, "room_id").strip(), _actor(request)
            )
            message = f"Run {run.id} ({run.badge_id}) is now labelled {run.room.name}."
        else:
            raise HTTPBadRequest("unknown change; use the forms on the history page")
    except RunNotFound as exc:
        raise HTTPNotFound(str(exc)) from None
    except (LabelConflict, LabelError) as exc:
        request.tm.doom()
        message = f"Nothing changed: {exc.message}"
    request.session.flash(message)
    return HTTPSeeOther(location=request.route_url("admin.training.history"))


def coverage_page(request):
    service = _service(request)
    site_id = _id_param(request, "site_id")
    rooms = service.coverage(site_id)
    return _page(
        request,
        rooms=rooms,
        min_runs=service.MIN_RUNS,
        min_readings=service.MIN_READINGS,
        imbalance=service.IMBALANCE,
        total_runs=sum(room.runs for room in rooms),
        total_readings=sum(room.readings for room in rooms),
    )
