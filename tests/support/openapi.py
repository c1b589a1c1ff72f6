"""Every JSON response the functional suite receives, checked against the
OpenAPI document the app serves.

``DocumentedApp`` wraps the WSGI app (outside the ingest fast path, so the
readings it answers are checked too). A JSON response to an operation of
the document must match the schema the document gives for its status (or
``default``); a JSON error from anywhere else must be an ``Error``; a
successful JSON response that no operation documents fails the test.
"""

import functools
import re
from functools import cached_property

import orjson
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from stethoscope.singletons import OPENAPI_DOCUMENT


class UndocumentedResponse(AssertionError):
    pass


class DocumentedApp:
    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):
        # registry, and whatever else the tests read off the app.
        return getattr(self.app, name)

    @cached_property
    def checker(self) -> "DocumentChecker":
        return checker_of(self.app.registry[DOCUMENT_KEY])

    def __call__(self, environ, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = headers
            return start_response(status, headers, exc_info)

        iterable = self.app(environ, capture)
        try:
            body = b"".join(iterable)
        finally:
            # A static file's FileIter closes its file here (PEP 3333).
            if hasattr(iterable, "close"):
                iterable.close()
        headers = {name.lower(): value for name, value in captured["headers"]}
        content_type = headers.get("content-type", "")
        if content_type.split(";")[0].strip() == "application/json" and body:
            self.checker.check(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", ""),
                captured["status"],
                orjson.loads(body),
            )
        return [body]


DOCUMENT_KEY = OPENAPI_DOCUMENT
URI = "urn:stethoscope:openapi"


@functools.lru_cache(maxsize=8)
def checker_of(document: bytes) -> "DocumentChecker":
    """The checker of a served document; apps that serve the same document
    (most of the suite's) share one, and its compiled validators."""
    return DocumentChecker(orjson.loads(document))


class DocumentChecker:
    def __init__(self, document: dict):
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(URI, resource).crawl()
        self.validators: dict[str, OAS31Validator] = {}
        self.routes = []
        for path, operations in document["paths"].items():
            # A placeholder that ends the path takes the rest of it: ids
            # may hold "/" (the routes' {room_id:.+}).
            pattern = re.sub(r"\\\{[^}]+\\\}$", "(.+)", re.escape(path))
            pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", pattern)
            self.routes.append((re.compile(pattern + "$"), path, operations))
        # A fixed path wins over a placeholder (/training_runs/coverage and
        # /training_runs/{run_id}), and a placeholder of one segment over
        # the rest of the path (/training_runs/{run_id}/cancel).
        self.routes.sort(
            key=lambda route: (route[0].groups, route[0].pattern.endswith("(.+)$"))
        )

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        """The JSON pointer to the operation for ``method path``, and it."""
        for pattern, template, operations in self.routes:
            if pattern.match(path):
                for name in (method.lower(), "get" if method == "HEAD" else None):
                    if name in operations:
                        pointer = "/paths/{}/{}".format(
                            template.replace("~", "~0").replace("/", "~1"), name
                        )
                        return pointer, operations[name]
        return None

    def resolve(self, pointer: str):
        node = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def check(self, method: str, path: str, status: int, body) -> None:
        found = self.operation(method, path)
        if found is None:
            if status < 400:
                raise UndocumentedResponse(
                    f"{method} {path} answered {status} with JSON, and the "
                    "document has no such operation"
                )
            pointer = "/components/schemas/Error"
        else:
            pointer, operation = found
            key = str(status) if str(status) in operation["responses"] else "default"
            response = operation["responses"].get(key)
            if response is None:
                raise UndocumentedResponse(
                    f"{method} {path}: status {status} is not documented"
                )
            if "$ref" in response:  # a shared response in components
                pointer = response["$ref"].removeprefix("#")
                response = self.resolve(pointer)
                key = None
            if "application/json" not in response.get("content", {}):
                raise UndocumentedResponse(
                    f"{method} {path}: status {status} documents no JSON body"
                )
            if key is not None:
                pointer += f"/responses/{key}"
            pointer += "/content/application~1json/schema"
        # Refs inside the document resolve against the document itself.
        validator = self.validators.get(pointer)
        if validator is None:
            validator = self.validators[pointer] = OAS31Validator(
                {"$ref": URI + "#" + pointer}, registry=self.registry
            )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            details = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(body)'}: {e.message[:200]}"
                for e in errors[:5]
            )
            raise UndocumentedResponse(
                f"{method} {path} answered {status} with a body that does not "
                f"match the document: {details}"
            )
