"""The alerts API: GET /alerts (docs/api/alerts.md).

VIEW: every member of staff sees what is wrong; the wearer of a badge an
alert is about only with VIEW_HISTORY, as in locating.
"""

from ..endpoints import endpoint
from ..permissions import VIEW, VIEW_HISTORY
from .schemas import AlertList, AlertsQuery
from .services import AlertService


@endpoint(
    route_name="alerts.list",
    request_method="GET",
    permission=VIEW,
    summary="Alerts: open, cleared or all, newest first",
    description="Conditions are evaluated first when due (at most every "
    "stethoscope.alerts.interval_seconds per server process).",
    query=AlertsQuery,
    response=AlertList,
    errors={404: "No such site."},
    tags=("alerts",),
)
def alerts(request):
    query = request.validated.query
    return AlertList(
        alerts=request.find_service(AlertService).alerts(
            query.site,
            state=query.state,
            limit=query.limit,
            with_wearers=bool(request.has_permission(VIEW_HISTORY)),
        )
    )
