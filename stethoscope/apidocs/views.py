from pyramid.view import view_config


@view_config(route_name="apidocs.index", request_method="GET", renderer="string")
def index(request):
    return "API documentation"
