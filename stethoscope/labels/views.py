"""Training runs over JSON (/training_runs/…); the admin pages are in pages.py.

The routes mirror the original system's ``bulk_start``, ``bulk_end`` and
``bulk_stats``. Every endpoint needs ADMIN, reads included: training data
says where residents were. LabelService refuses what breaks the run rules
(stethoscope.errors: 400 naming the field, 404, 409 naming the badge and
run in the way), and records each change in the audit log.
"""

import functools

from ..endpoints import endpoint
from ..permissions import ADMIN
from .schemas import (
    BulkEndIn,
    BulkStartIn,
    Coverage,
    CoverageQuery,
    DeletedTrainingRun,
    LiveStats,
    RelabelIn,
    RoomCoverage,
    RunPath,
    RunsQuery,
    StatsQuery,
    Thresholds,
    TrainingRun,
    TrainingRunList,
    TrainingRunPage,
    TrainingRunStats,
    TrainingRunStatsList,
)
from .services import LabelService

NOT_FOUND = "No training run with this id."
CONFLICT = (
    "Refused by the run rules (an open run, an overlap, a run not open); "
    "badge_id and run_id say which."
)


training_endpoint = functools.partial(endpoint, permission=ADMIN, tags=("training",))
# /training_runs/{run_id} and the actions below it.
run_endpoint = functools.partial(
    training_endpoint, path=RunPath, errors={404: NOT_FOUND}
)


def _service(request) -> LabelService:
    return request.find_service(LabelService)


def _actor(request) -> str:
    return request.authenticated_userid or "-"


@training_endpoint(
    route_name="labels.runs",
    request_method="GET",
    summary="Training runs, newest first",
    query=RunsQuery,
    response=TrainingRunPage,
)
def list_training_runs(request):
    query = request.validated.query
    # The query's filters and page are the service's parameters, by name.
    runs, total = _service(request).page(**query.model_dump())
    return TrainingRunPage(
        runs=[TrainingRun.of(run) for run in runs],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@training_endpoint(
    route_name="labels.bulk_start",
    request_method="POST",
    summary="Start a run for each badge, in one room, at one moment",
    description="All or nothing: a badge with an open run, or whose runs the "
    "new one would overlap, refuses the whole request.",
    body=BulkStartIn,
    response=TrainingRunList,
    status=201,
    errors={409: CONFLICT},
)
def bulk_start_training_runs(request):
    body = request.validated.body
    runs = _service(request).start(body.badge_ids, body.room_id, _actor(request))
    return TrainingRunList(runs=[TrainingRun.of(run) for run in runs])


@training_endpoint(
    route_name="labels.bulk_end",
    request_method="POST",
    summary="End open runs, by badge or by run id, at one moment",
    description="Answers each run's final statistics; a run with no readings "
    "has a warning.",
    body=BulkEndIn,
    response=TrainingRunStatsList,
    errors={404: NOT_FOUND, 409: CONFLICT},
)
def bulk_end_training_runs(request):
    body = request.validated.body
    results = _service(request).end(
        run_ids=body.run_ids, badge_ids=body.badge_ids, actor=_actor(request)
    )
    return TrainingRunStatsList(runs=[TrainingRunStats.of(r) for r in results])


@training_endpoint(
    route_name="labels.bulk_stats",
    request_method="GET",
    summary="Live statistics of runs (the open runs when none are named)",
    query=StatsQuery,
    response=LiveStats,
)
def training_run_stats(request):
    service = _service(request)
    return LiveStats(
        runs=[
            TrainingRunStats.of(result)
            for result in service.stats(request.validated.query.run_ids)
        ],
        silent_after_s=service.SILENT_AFTER.total_seconds(),
    )


@training_endpoint(
    route_name="labels.coverage",
    request_method="GET",
    summary="Per room: completed runs, readings, badges and warnings",
    query=CoverageQuery,
    response=Coverage,
)
def training_coverage(request):
    service = _service(request)
    return Coverage(
        rooms=[
            RoomCoverage.of(room)
            for room in service.coverage(request.validated.query.site_id)
        ],
        thresholds=Thresholds(
            min_runs=service.MIN_RUNS,
            min_readings=service.MIN_READINGS,
            imbalance=service.IMBALANCE,
        ),
    )


@run_endpoint(
    route_name="labels.run",
    request_method="GET",
    summary="One run with its statistics",
    response=TrainingRunStats,
)
def get_training_run(request):
    service = _service(request)
    run = service.get(request.validated.path.run_id)
    return TrainingRunStats.of(service.stats_of([run])[0])


@run_endpoint(
    route_name="labels.run",
    request_method="DELETE",
    summary="Delete a run; its readings stay, unlabelled",
    response=DeletedTrainingRun,
)
def delete_training_run(request):
    run = _service(request).delete(request.validated.path.run_id, _actor(request))
    return DeletedTrainingRun(deleted=TrainingRun.of(run))


@run_endpoint(
    route_name="labels.run.cancel",
    request_method="POST",
    summary="Cancel a run: kept, but never training data",
    description="No body.",
    response=TrainingRun,
    errors={404: NOT_FOUND, 409: CONFLICT},
)
def cancel_training_run(request):
    run_id = request.validated.path.run_id
    return TrainingRun.of(_service(request).cancel(run_id, _actor(request)))


@run_endpoint(
    route_name="labels.run.relabel",
    request_method="POST",
    summary="Say the run's badge was in another room",
    body=RelabelIn,
    response=TrainingRun,
)
def relabel_training_run(request):
    run = _service(request).relabel(
        request.validated.path.run_id,
        request.validated.body.room_id,
        _actor(request),
    )
    return TrainingRun.of(run)
