from openapi_spec_validator import validate

from stethoscope.apidocs.openapi import build_openapi
from stethoscope.config import parse_settings
from stethoscope.ingest.schemas import ReadingIn


def settings(**overrides):
    return parse_settings({"sqlalchemy.url": "sqlite://", **overrides}, environ={})


def test_is_valid_with_the_default_settings():
    validate(build_openapi(settings()))


def test_batch_items_require_observed_at():
    schemas = build_openapi(settings())["components"]["schemas"]

    assert schemas["BatchItemIn"]["allOf"][0] == {
        "$ref": "#/components/schemas/ReadingIn"
    }
    assert schemas["BatchItemIn"]["allOf"][1]["required"] == ["observed_at"]


def test_does_not_change_the_model_schema():
    before = ReadingIn.model_json_schema(ref_template="#/components/schemas/{model}")
    build_openapi(settings(**{"stethoscope.ingest.max_beacons": "4"}))

    after = ReadingIn.model_json_schema(ref_template="#/components/schemas/{model}")
    assert after == before
    assert "maxProperties" not in after["properties"]["beacons"]


def test_documents_are_independent():
    first = build_openapi(settings())
    first["components"]["responses"]["Error"]["description"] = "changed"

    second = build_openapi(settings())
    assert second["components"]["responses"]["Error"]["description"] == (
        "Any other error."
    )
