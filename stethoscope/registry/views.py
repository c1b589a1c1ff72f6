from pyramid.view import view_config

from ..security import VIEW
from .services import SeenService


@view_config(
    route_name="registry.gateways",
    request_method="GET",
    renderer="json",
    permission=VIEW,
)
def list_gateways(request):
    return {"gateways": request.find_service(SeenService).gateways()}


@view_config(
    route_name="registry.badges", request_method="GET", renderer="json", permission=VIEW
)
def list_badges(request):
    return {"badges": request.find_service(SeenService).badges()}
