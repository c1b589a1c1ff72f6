"""GET /docs, /docs/{page} (the Markdown pages as HTML) and /openapi.json."""

from typing import Any

from pydantic import RootModel
from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.response import Response

from .. import pages
from ..endpoints import endpoint
from ..permissions import PUBLIC
from ..singletons import OPENAPI_DOCUMENT
from .services import DocsLibrary

# docs/api/index.md, when there is one, is the introduction on /docs.
# The API documentation is public: gateway authors need it, and it holds no
# data about anyone.
INDEX_PAGE = "index"


@pages.page("apidocs.index", PUBLIC, "stethoscope:apidocs/templates/index.jinja2")
def index(request):
    library = request.find_service(DocsLibrary)
    return {
        "intro": library.page(INDEX_PAGE),
        "pages": [page for page in library.pages() if page.name != INDEX_PAGE],
    }


@pages.page("apidocs.page", PUBLIC, "stethoscope:apidocs/templates/page.jinja2")
def page(request):
    name = request.matchdict["page"]
    if name == INDEX_PAGE:
        return HTTPFound(request.route_url("apidocs.index"))
    found = request.find_service(DocsLibrary).page(name)
    if found is None:
        raise HTTPNotFound(f"no documentation page {name!r}")
    return {"page": found}


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """This document: OpenAPI 3.1."""


@endpoint(
    route_name="apidocs.openapi",
    request_method="GET",
    permission=PUBLIC,
    summary="The OpenAPI document of the JSON API",
    response=OpenAPIDocument,
    tags=("docs",),
)
def openapi(request):
    # Serialised once at start-up (see includeme).
    return Response(
        body=request.registry[OPENAPI_DOCUMENT],
        content_type="application/json",
    )
