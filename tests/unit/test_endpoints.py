"""Declaring an endpoint: parsing by the declared models, the statuses, and
the document generated from the declarations."""

from typing import Annotated

import pytest
import webob
import webtest
from openapi_spec_validator import validate
from pydantic import Field
from pyramid.config import Configurator

from stethoscope.apidocs.openapi import build_openapi
from stethoscope.endpoints import endpoint
from stethoscope.errors import Conflict, NotFound
from stethoscope.ops.renderers import OrjsonRendererFactory
from stethoscope.permissions import PUBLIC
from stethoscope.schemas import Body, Identifier, Out, Query, QueryInt, RowId


class ThingPath(Query):
    thing_id: Annotated[int, Field(ge=1, le=1000)]


class ThingQuery(Query):
    limit: QueryInt(1, 50) = 10
    tag: list[Identifier] = []


class ThingIn(Body):
    name: Identifier
    size: RowId


class Thing(Out):
    """A thing, as stored."""

    id: int
    name: str
    tags: list[str]


@endpoint(
    route_name="things",
    request_method="POST",
    permission=PUBLIC,
    summary="Make a thing",
    body=ThingIn,
    response=Thing,
    status=201,
    errors={409: "The name is taken."},
)
def make_thing(request):
    body = request.validated.body
    if body.name == "taken":
        raise Conflict("the name is taken", details={"name": body.name})
    return Thing(id=body.size, name=body.name, tags=[])


@endpoint(
    route_name="thing",
    request_method="GET",
    permission=PUBLIC,
    summary="One thing",
    path=ThingPath,
    query=ThingQuery,
    response=Thing,
)
def get_thing(request):
    if request.validated.path.thing_id == 404:
        raise NotFound("no such thing")
    query = request.validated.query
    return Thing(
        id=request.validated.path.thing_id, name="x" * query.limit, tags=query.tag
    )


@pytest.fixture(scope="module")
def config():
    config = Configurator(settings={})
    config.include("stethoscope.endpoints")
    config.add_renderer("json", OrjsonRendererFactory)
    config.add_route("things", "/things")
    config.add_route("thing", "/things/{thing_id:\\d+}")
    config.scan(__name__)
    # The error views, as the app has them.
    config.scan("stethoscope.ops.errors")
    config.commit()
    return config


@pytest.fixture
def app(config):
    return webtest.TestApp(config.make_wsgi_app())


class TestParsing:
    def test_a_body_becomes_the_model(self, app):
        response = app.post_json("/things", {"name": "box", "size": 3}, status=201)
        assert response.json == {"id": 3, "name": "box", "tags": []}

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "box"}, "size"),
            ({"name": "box", "size": "3"}, "size"),  # strict: no strings
            ({"name": "box", "size": True}, "size"),
            ({"name": "", "size": 3}, "name"),
            ({"name": "box", "size": 3, "colour": "red"}, "colour"),
            ([1, 2], "body"),
        ],
    )
    def test_a_bad_body_is_400_naming_the_field(self, app, body, field):
        response = app.post_json("/things", body, status=400)
        assert response.json["error"] == "invalid"
        assert [error["field"] for error in response.json["errors"]] == [field]

    def test_not_json_is_400(self, app):
        response = app.post(
            "/things", b"{nope", content_type="application/json", status=400
        )
        assert response.json["errors"][0]["field"] == "body"

    def test_media_type_ignores_case(self, app):
        app.post(
            "/things",
            b'{"name": "box", "size": 3}',
            content_type="Application/JSON",
            status=201,
        )

    def test_another_media_type_is_415(self, app):
        app.post("/things", b"name=box", content_type="text/plain", status=415)

    def test_a_large_body_is_413(self, app):
        app.post_json("/things", {"name": "x" * 70_000, "size": 1}, status=413)

    def test_query_and_path(self, app):
        response = app.get("/things/7?limit=2&tag=a&tag=b")
        assert response.json == {"id": 7, "name": "xx", "tags": ["a", "b"]}

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=%D9%A1%D9%A2", "limit"),  # Arabic-Indic digits
            ("limit=" + "9" * 5000, "limit"),
            ("limit=", "limit"),
            ("colour=red", "colour"),
        ],
    )
    def test_a_bad_query_is_400_naming_the_parameter(self, app, query, field):
        response = app.get(f"/things/7?{query}", status=400)
        assert response.json["errors"][0]["field"] == field

    @pytest.mark.parametrize(
        ("query", "tags"),
        [
            ("tag=a;b&tag=c", ["a;b", "c"]),  # only "&" separates
            ("tag=a%3Bb", ["a;b"]),
            ("&&tag=a&", ["a"]),
            ("tag=%7E", ["~"]),
        ],
    )
    def test_a_query_is_split_on_ampersands_only(self, app, query, tags):
        assert app.get(f"/things/7?{query}").json["tags"] == tags

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=2;colour=red", "limit"),
            ("tag", "tag.0"),
            ("tag=%FF", "query_string"),
        ],
    )
    def test_a_query_split_so_is_still_checked(self, app, query, field):
        response = app.get(f"/things/7?{query}", status=400)
        assert [error["field"] for error in response.json["errors"]] == [field]

    @pytest.mark.parametrize(
        ("raw", "field"), [("\xff", "query_string"), ("\xc3\xa9", "tag.0")]
    )
    def test_raw_bytes_are_read_as_utf8(self, app, raw, field):
        # As a WSGI server hands them over: the bytes, as latin-1.
        request = webob.Request.blank("/things/7")
        request.environ["QUERY_STRING"] = f"tag={raw}"
        response = request.get_response(app.app)
        assert response.status_int == 400
        assert [error["field"] for error in response.json["errors"]] == [field]

    def test_a_path_that_cannot_name_anything_is_404(self, app):
        app.get("/things/5000", status=404)

    def test_service_errors_are_rendered_once(self, app):
        missing = app.get("/things/404", status=404).json
        # Every error body says which request it answers.
        assert missing.pop("request_id")
        assert missing == {
            "status": 404,
            "error": "not_found",
            "message": "no such thing",
        }
        conflict = app.post_json(
            "/things", {"name": "taken", "size": 1}, status=409
        ).json
        assert conflict.pop("request_id")
        assert conflict == {
            "status": 409,
            "error": "conflict",
            "message": "the name is taken",
            "name": "taken",
        }


class TestDocument:
    def test_is_valid_openapi(self, config):
        validate(build_openapi(config.registry))

    def test_operations_come_from_the_declarations(self, config):
        document = build_openapi(config.registry)
        post = document["paths"]["/things"]["post"]
        get = document["paths"]["/things/{thing_id}"]["get"]

        assert post["operationId"] == "makeThing"
        assert post["security"] == []
        assert post["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ThingIn"
        }
        assert set(post["responses"]) == {
            "201",
            "400",
            "409",
            "413",
            "415",
            "503",
            "default",
        }
        assert post["responses"]["201"]["description"] == "A thing, as stored."
        parameters = {p["name"]: p for p in get["parameters"]}
        assert parameters["thing_id"]["in"] == "path"
        assert parameters["thing_id"]["schema"]["maximum"] == 1000
        assert parameters["limit"]["schema"]["maximum"] == 50
        assert parameters["tag"]["schema"]["type"] == "array"
        assert "404" in get["responses"]
        schemas = document["components"]["schemas"]
        assert schemas["ThingIn"]["additionalProperties"] is False
        assert {"Thing", "ThingIn", "Error"} <= set(schemas)
