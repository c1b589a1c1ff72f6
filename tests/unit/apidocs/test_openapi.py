"""The document generated from the declared endpoints, for given settings."""

import pytest
from openapi_spec_validator import validate

from stethoscope.apidocs.openapi import build_openapi
from stethoscope.config import configure
from stethoscope.ingest.schemas import ReadingIn
from stethoscope.singletons import DATABASE

REF = "#/components/schemas/{model}"


def document(tmp_path, **overrides):
    registry = configure(
        {
            "sqlalchemy.url": f"sqlite:///{tmp_path}/unused.sqlite",
            "stethoscope.secret": "a-test-secret-of-at-least-32-characters",
            "stethoscope.model_dir": str(tmp_path / "models"),
            "stethoscope.gc_freeze": "false",
            **overrides,
        }
    ).registry
    try:
        return build_openapi(registry)
    finally:
        registry[DATABASE].dispose()


def post_body(doc) -> list[dict]:
    post = doc["paths"]["/rssi_readings"]["post"]
    return post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]


def test_is_valid_openapi_3_1(tmp_path):
    doc = document(tmp_path)

    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_limits_follow_the_settings(tmp_path):
    doc = document(
        tmp_path,
        **{
            "stethoscope.ingest.max_beacons": "4",
            "stethoscope.ingest.max_batch_items": "7",
            "stethoscope.readings.page_limit": "40",
        },
    )

    single, batch = post_body(doc)
    assert single["allOf"][1] == {"properties": {"beacons": {"maxProperties": 4}}}
    assert (batch["minItems"], batch["maxItems"]) == (1, 7)
    assert batch["items"]["allOf"][1]["properties"]["beacons"]["maxProperties"] == 4
    limit = {
        parameter["name"]: parameter["schema"]
        for parameter in doc["paths"]["/rssi_readings"]["get"]["parameters"]
    }["limit"]
    assert (limit["maximum"], limit["default"]) == (40, 40)


def test_the_reading_schema_is_the_models(tmp_path):
    schemas = document(tmp_path)["components"]["schemas"]

    assert schemas["ReadingIn"] == ReadingIn.model_json_schema(ref_template=REF)
    assert "maxProperties" not in schemas["ReadingIn"]["properties"]["beacons"]
    # A batch's items need observed_at; a single reading does not.
    assert "observed_at" in schemas["BatchItemIn"]["required"]
    assert "observed_at" not in schemas["ReadingIn"]["required"]
    single, batch = post_body(document(tmp_path))
    assert single["allOf"][0] == {"$ref": REF.format(model="ReadingIn")}
    assert batch["items"]["allOf"][0] == {"$ref": REF.format(model="BatchItemIn")}


@pytest.mark.parametrize(
    ("settings", "security", "says"),
    [
        ({}, [{"gatewayToken": []}], "Needs the posting gateway's token."),
        (
            {
                "stethoscope.ingest.require_token": "false",
                "stethoscope.ingest.allow_ips": "10.0.0.0/8",
            },
            [{"gatewayToken": []}, {}],
            "without one, from 10.0.0.0/8",
        ),
    ],
)
def test_ingest_security_follows_require_token(tmp_path, settings, security, says):
    doc = document(tmp_path, **settings)

    validate(doc)
    post = doc["paths"]["/rssi_readings"]["post"]
    assert post["security"] == security
    assert says in post["description"]


def test_health_is_public_and_its_503_is_a_report(tmp_path):
    health = document(tmp_path)["paths"]["/health"]["get"]

    assert health["security"] == []
    assert not {"401", "403"} & set(health["responses"])
    report = health["responses"]["200"]["content"]
    assert health["responses"]["503"]["content"] == report
    assert "Retry-After" in health["responses"]["503"]["headers"]
