"""Training runs as admin pages (/admin/training); the JSON API is in views.py.

Pages follow the admin pages' pattern: forms with the CSRF token,
POST-redirect-GET with a flash message, and the reason shown (400 or 409)
when the service refuses, with nothing written.

Times on pages are shown in the time zone of the run's site (room → site →
IANA zone), with the zone's abbreviation, never the server's.
"""

import datetime
import zoneinfo

from pyramid.httpexceptions import HTTPBadRequest

from ..endpoints import path_params, query_params
from ..errors import Conflict, Invalid
from ..forms import actor, reason, redirect, refuse, refuse_and_flash
from ..ops.params import form_text, form_texts, parse_id
from ..pages import page
from ..permissions import ADMIN
from ..registry.models import Room
from ..schemas import MAX_ROW_ID
from .schemas import CoverageQuery, HistoryQuery, RunPath
from .services import LabelService

# The live page polls this often; a badge advertises about once a second.
POLL_MS = 2000
# Badges offered on the start form: heard within this long.
RECENT_BADGES = datetime.timedelta(minutes=10)
HISTORY_ROWS = 50
TRAINING = "stethoscope:labels/templates/training.jinja2"
HISTORY = "stethoscope:labels/templates/history.jinja2"
COVERAGE = "stethoscope:labels/templates/coverage.jinja2"


def _service(request) -> LabelService:
    return request.find_service(LabelService)


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


@page("admin.training", ADMIN, TRAINING)
def training_page(request):
    return _training_page(request)


@page("admin.training.start", ADMIN, TRAINING, request_method="POST")
def start_form(request):
    room_id = form_text(request.POST, "room_id").strip()
    picked = [value.strip() for value in form_texts(request.POST, "badge_ids")]
    other = form_text(request.POST, "other_badges")[:2000]
    badge_ids = [b for b in picked if b] + [
        b for b in other.replace(",", " ").split() if b
    ]
    form = {"room_id": room_id, "badge_ids": picked, "other_badges": other}
    try:
        runs = _service(request).start(badge_ids, room_id, actor(request))
    except (Invalid, Conflict) as exc:
        refuse(request, exc.status)
        return _training_page(request, form=form, error=reason(exc))
    room = runs[0].room
    request.session.flash(
        f"Started {len(runs)} run{'s' if len(runs) != 1 else ''} in {room.name} "
        f"({', '.join(run.badge_id for run in runs)}) at "
        f"{local_time(runs[0].started_at, _room_zone(room))}."
    )
    return redirect(request, "admin.training")


@page("admin.training.end", ADMIN, TRAINING, request_method="POST")
def end_form(request):
    service = _service(request)
    if request.POST.get("all") == "true":
        run_ids = [run.id for run in service.open_runs()]
        if not run_ids:
            request.session.flash("No open runs to end.")
            return redirect(request, "admin.training")
    else:
        run_id = parse_id(form_text(request.POST, "run_id"), MAX_ROW_ID)
        if run_id is None:
            raise HTTPBadRequest("run_id: use the End buttons on the training page")
        run_ids = [run_id]
    try:
        results = service.end(run_ids=run_ids, actor=actor(request))
    except (Invalid, Conflict) as exc:
        refuse_and_flash(request, f"Nothing ended: {reason(exc)}")
        return redirect(request, "admin.training")
    for result in results:
        note = f" Warning: {'; '.join(result.warnings)}." if result.warnings else ""
        request.session.flash(
            f"Ended run {result.run.id} ({result.run.badge_id} in "
            f"{result.run.room.name}): {result.readings} readings.{note}"
        )
    return redirect(request, "admin.training")


@page("admin.training.history", ADMIN, HISTORY)
def history_page(request):
    query = query_params(request, HistoryQuery)
    service = _service(request)
    runs, total = service.page(
        status=query.status or "finished",
        limit=HISTORY_ROWS,
        offset=(query.page - 1) * HISTORY_ROWS,
    )
    return _page(
        request,
        stats=service.stats_of(runs),
        rooms=service.rooms(),
        status=query.status,
        page=query.page,
        pages=max(1, -(-total // HISTORY_ROWS)),
        total=total,
    )


@page("admin.training.run", ADMIN, HISTORY, request_method="POST")
def change_run_form(request):
    service = _service(request)
    run_id = path_params(request, RunPath).run_id
    change = request.POST.get("change", "")
    try:
        if change == "cancel":
            run = service.cancel(run_id, actor(request))
            message = (
                f"Cancelled run {run.id} ({run.badge_id}): it is not training data."
            )
        elif change == "delete":
            gone = service.delete(run_id, actor(request))
            message = (
                f"Deleted run {gone.id} ({gone.badge_id}); its readings "
                "are kept, unlabelled."
            )
        elif change == "relabel":
            run = service.relabel(
                run_id, form_text(request.POST, "room_id").strip(), actor(request)
            )
            message = f"Run {run.id} ({run.badge_id}) is now labelled {run.room.name}."
        else:
            raise HTTPBadRequest("unknown change; use the forms on the history page")
    except (Invalid, Conflict) as exc:
        # An unknown run (NotFound) is not caught: that is the page's 404.
        refuse_and_flash(request, f"Nothing changed: {reason(exc)}")
        return redirect(request, "admin.training.history")
    request.session.flash(message)
    return redirect(request, "admin.training.history")


@page("admin.training.coverage", ADMIN, COVERAGE)
def coverage_page(request):
    service = _service(request)
    rooms = service.coverage(query_params(request, CoverageQuery).site_id)
    return _page(
        request,
        rooms=rooms,
        min_runs=service.MIN_RUNS,
        min_readings=service.MIN_READINGS,
        imbalance=service.IMBALANCE,
        total_runs=sum(room.runs for room in rooms),
        total_readings=sum(room.readings for room in rooms),
    )
