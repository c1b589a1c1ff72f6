"""A JSON renderer on orjson: strict (no NaN), fast, and datetime-aware."""

import orjson


def _default(value):
    if hasattr(value, "as_json"):
        return value.as_json()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class OrjsonRendererFactory:
    def __init__(self, info):
        pass

    def __call__(self, value, system):
        request = system.get("request")
        if request is not None:
            response = request.response
            if response.content_type == response.default_content_type:
                response.content_type = "application/json"
        return orjson.dumps(value, default=_default)
