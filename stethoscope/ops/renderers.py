"""A JSON renderer on orjson: strict (no NaN), fast, datetime-aware, and
rendering pydantic models (what endpoints return) by their JSON form."""

import orjson

from ..endpoints import jsonable


class OrjsonRendererFactory:
    def __init__(self, info):
        pass

    def __call__(self, value, system):
        request = system.get("request")
        if request is not None:
            response = request.response
            if response.content_type == response.default_content_type:
                response.content_type = "application/json"
        return orjson.dumps(value, default=jsonable)
