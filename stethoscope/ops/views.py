from pyramid.view import view_config

from .services import HealthService


@view_config(route_name="ops.health", request_method="GET", renderer="json")
def health(request):
    report = request.find_service(HealthService).check()
    if report["status"] != "ok":
        request.response.status = 503
        request.response.headers["Retry-After"] = "5"
    return report
