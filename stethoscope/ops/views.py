from pyramid.view import view_config

from ..permissions import PUBLIC
from .services import HealthService


@view_config(
    route_name="ops.health", request_method="GET", renderer="json", permission=PUBLIC
)
def health(request):
    report = request.find_service(HealthService).check()
    if report["status"] != "ok":
        request.response.status = 503
        retry_after = request.registry.settings["stethoscope.db.retry_after_s"]
        request.response.headers["Retry-After"] = str(retry_after)
    return report
