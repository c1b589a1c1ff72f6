"""The locating API: /badges/{id}/location, location_history, stays and
/sites/{id}/occupancy (docs/api/locating.md).

Where a badge is now needs VIEW; where it was over a day, and who wears
it, need VIEW_HISTORY (staff): a day of rooms says much about a person.

A day's history and stays come from the service as the JSON body itself
(a finished day's is kept: asked again, it is a lookup, not 17,280 pairs
built and serialised again), sent as the JSON renderer sends a body.
"""

import functools

from ..endpoints import endpoint
from ..permissions import VIEW, VIEW_HISTORY
from . import schemas
from .services import LocatingService

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

locating_endpoint = functools.partial(endpoint, tags=("locating",))
# What GET and POST on a route share; POST adds priors in its body.
location_endpoint = functools.partial(
    locating_endpoint,
    route_name="locating.location",
    permission=VIEW,
    path=schemas.BadgePath,
    response=schemas.Location,
    errors=LOCATION_ERRORS,
)
history_endpoint = functools.partial(
    locating_endpoint,
    route_name="locating.history",
    permission=VIEW_HISTORY,
    path=schemas.BadgePath,
    response=schemas.History,
    errors=DAY_ERRORS,
)


def _service(request) -> LocatingService:
    return request.find_service(LocatingService)


def _json_body(request, body: bytes):
    """``body``, JSON the service wrote as the renderer would, in the
    response the renderer fills (its status and headers)."""
    response = request.response
    response.content_type = "application/json"
    response.body = body
    return response


@location_endpoint(request_method="GET", summary="Where a badge is now")
def location(request):
    return _service(request).location(request.validated.path.badge_id)


# A question, not a change: cookie callers still send their CSRF token
# (every POST does), token callers do not.
@location_endpoint(
    request_method="POST",
    summary="Where a badge is now, weighed by priors (Bayes)",
    body=schemas.LocationBody,
)
def location_with_priors(request):
    return _service(request).location(
        request.validated.path.badge_id, request.validated.body.priors
    )


def _history(request, options, priors=None):
    return _json_body(
        request,
        _service(request).history_body(
            request.validated.path.badge_id,
            day=options.date,
            grain=options.grain,
            offset=options.offset,
            algorithm=options.algorithm,
            return_value=options.return_value,
            priors=priors,
        ),
    )


@history_endpoint(
    request_method="GET",
    summary="Where a badge was over a day",
    query=schemas.HistoryQuery,
)
def location_history(request):
    return _history(request, request.validated.query)


@history_endpoint(
    request_method="POST",
    summary="Where a badge was over a day, weighed by priors",
    body=schemas.HistoryBody,
)
def location_history_with_priors(request):
    body = request.validated.body
    return _history(request, body, body.priors)


@locating_endpoint(
    route_name="locating.stays",
    request_method="GET",
    permission=VIEW_HISTORY,
    summary="A badge's stays in rooms over a day",
    path=schemas.BadgePath,
    query=schemas.StaysQuery,
    response=schemas.Stays,
    errors=DAY_ERRORS,
)
def stays(request):
    return _json_body(
        request,
        _service(request).stays_body(
            request.validated.path.badge_id, day=request.validated.query.date
        ),
    )


@locating_endpoint(
    route_name="locating.occupancy",
    request_method="GET",
    permission=VIEW,
    summary="Who is in which room of a site now",
    path=schemas.SitePath,
    response=schemas.Occupancy,
    errors={404: "No such site.", 503: LOCATION_ERRORS[503]},
)
def occupancy(request):
    return _service(request).occupancy(
        request.validated.path.site_id,
        with_wearers=bool(request.has_permission(VIEW_HISTORY)),
    )
