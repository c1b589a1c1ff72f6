"""The locating API: /badges/{id}/location, location_history, stays and
/sites/{id}/occupancy (docs/api/locating.md).

Where a badge is now needs VIEW; where it was over a day, and who wears
it, need VIEW_HISTORY (staff): a day of rooms says much about a person.
"""

from ..endpoints import endpoint
from ..permissions import VIEW, VIEW_HISTORY
from . import schemas
from .services import LocatingService

TAGS = ("locating",)
LOCATION_ERRORS = {
    404: "The badge sent nothing in the last stethoscope.locating."
    "recent_seconds (60 s), or it is at no site.",
    503: "The badge's site has no active model (Retry-After says when to "
    "ask again), or the database is unavailable.",
}
DAY_ERRORS = {
    404: "The badge has no site.",
    503: LOCATION_ERRORS[503],
}


def _service(request) -> LocatingService:
    return request.find_service(LocatingService)


@endpoint(
    route_name="locating.location",
    request_method="GET",
    permission=VIEW,
    summary="Where a badge is now",
    path=schemas.BadgePath,
    response=schemas.Location,
    errors=LOCATION_ERRORS,
    tags=TAGS,
)
def location(request):
    return _service(request).location(request.validated.path.badge_id)


@endpoint(
    route_name="locating.location",
    request_method="POST",
    permission=VIEW,
    summary="Where a badge is now, weighed by priors (Bayes)",
    path=schemas.BadgePath,
    body=schemas.LocationBody,
    response=schemas.Location,
    errors=LOCATION_ERRORS,
    tags=TAGS,
    # A question, not a change: cookie callers still send their CSRF token
    # (every POST does), token callers do not.
)
def location_with_priors(request):
    return _service(request).location(
        request.validated.path.badge_id, request.validated.body.priors
    )


def _history(request, options, priors=None) -> schemas.History:
    return schemas.History(
        _service(request).history(
            request.validated.path.badge_id,
            day=options.date,
            grain=options.grain,
            offset=options.offset,
            algorithm=options.algorithm,
            return_value=options.return_value,
            priors=priors,
        )
    )


@endpoint(
    route_name="locating.history",
    request_method="GET",
    permission=VIEW_HISTORY,
    summary="Where a badge was over a day",
    path=schemas.BadgePath,
    query=schemas.HistoryQuery,
    response=schemas.History,
    errors=DAY_ERRORS,
    tags=TAGS,
)
def location_history(request):
    return _history(request, request.validated.query)


@endpoint(
    route_name="locating.history",
    request_method="POST",
    permission=VIEW_HISTORY,
    summary="Where a badge was over a day, weighed by priors",
    path=schemas.BadgePath,
    body=schemas.HistoryBody,
    response=schemas.History,
    errors=DAY_ERRORS,
    tags=TAGS,
)
def location_history_with_priors(request):
    body = request.validated.body
    return _history(request, body, body.priors)


@endpoint(
    route_name="locating.stays",
    request_method="GET",
    permission=VIEW_HISTORY,
    summary="A badge's stays in rooms over a day",
    path=schemas.BadgePath,
    query=schemas.StaysQuery,
    response=schemas.Stays,
    errors=DAY_ERRORS,
    tags=TAGS,
)
def stays(request):
    return schemas.Stays(
        _service(request).stays(
            request.validated.path.badge_id, day=request.validated.query.date
        )
    )


@endpoint(
    route_name="locating.occupancy",
    request_method="GET",
    permission=VIEW,
    summary="Who is in which room of a site now",
    path=schemas.SitePath,
    response=schemas.Occupancy,
    errors={404: "No such site.", 503: LOCATION_ERRORS[503]},
    tags=TAGS,
)
def occupancy(request):
    return _service(request).occupancy(
        request.validated.path.site_id,
        with_wearers=bool(request.has_permission(VIEW_HISTORY)),
    )
