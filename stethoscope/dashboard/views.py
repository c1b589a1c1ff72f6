from pyramid.view import view_config

from ..ingest.services import ReadingQueryService

RECENT_ROWS = 50


@view_config(route_name="dashboard.home", request_method="GET", renderer="home.jinja2")
def home(request):
    readings = request.find_service(ReadingQueryService).page(
        badge_id=None, after=None, limit=RECENT_ROWS
    )
    return {"readings": readings[::-1]}
