from ..endpoints import endpoint
from ..permissions import PUBLIC
from .schemas import Health
from .services import HealthService


def _unavailable_is_health(operation: dict, settings) -> None:
    # A 503 here is the same report, saying what does not answer.
    operation["responses"]["503"] = {
        **operation["responses"]["503"],
        "description": "The database does not answer.",
        "content": operation["responses"]["200"]["content"],
    }


@endpoint(
    route_name="ops.health",
    request_method="GET",
    permission=PUBLIC,
    summary="Whether the database and the deduplicator answer",
    tags=("ops",),
    response=Health,
    amend=_unavailable_is_health,
)
def health(request):
    report = request.find_service(HealthService).check()
    if report.status != "ok":
        request.response.status = 503
        retry_after = request.registry.settings["stethoscope.db.retry_after_s"]
        request.response.headers["Retry-After"] = str(retry_after)
    return report
