from openapi_spec_validator import validate

from stethoscope.apidocs.legacy import build_openapi
from stethoscope.config import parse_settings
from stethoscope.ingest.schemas import ReadingIn


def settings(**overrides):
    return parse_settings(
        {
            "sqlalchemy.url": "sqlite:///var/unused.sqlite",
            "stethoscope.secret": "a-test-secret-of-at-least-32-characters",
            **overrides,
        },
        environ={},
    )


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


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


def test_security_schemes():
    schemes = build_openapi(settings())["components"]["securitySchemes"]

    assert schemes["gatewayToken"] == {
        **schemes["gatewayToken"],
        "type": "http",
        "scheme": "bearer",
    }
    assert schemes["staffSession"] == {
        **schemes["staffSession"],
        "type": "apiKey",
        "in": "cookie",
        "name": "stethoscope_session",
    }


def test_every_operation_says_who_may_call_it():
    document = build_openapi(settings())

    security = {
        (path, method): operation["security"]
        for path, method, operation in operations(document)
    }
    assert security.pop(("/rssi_readings", "post")) == [{"gatewayToken": []}]
    assert security.pop(("/health", "get")) == []
    # Everything else is for staff (which role: the security matrix test).
    staff_only = {
        key for key, value in security.items() if value != [{"staffSession": []}]
    }
    assert staff_only == set()
    assert {("/gateways", "get"), ("/badges", "get"), ("/sites", "post")} <= set(
        security
    )


def test_protected_operations_answer_401_and_403():
    for path, method, operation in operations(build_openapi(settings())):
        responses = operation["responses"]
        if operation["security"]:
            assert {"401", "403"} <= set(responses), (path, method)
        else:
            assert not {"401", "403"} & set(responses), (path, method)
    unauthorized = build_openapi(settings())["components"]["responses"]["Unauthorized"]
    assert "WWW-Authenticate" in unauthorized["headers"]


def test_ingest_token_is_optional_where_ingest_is_open():
    document = build_openapi(
        settings(
            **{
                "stethoscope.ingest.require_token": "false",
                "stethoscope.ingest.allow_ips": "10.0.0.0/8",
            }
        )
    )
    validate(document)

    post = document["paths"]["/rssi_readings"]["post"]
    assert post["security"] == [{"gatewayToken": []}, {}]
    assert "from 10.0.0.0/8" in post["description"]
    closed = build_openapi(settings())["paths"]["/rssi_readings"]["post"]
    assert "Needs the posting gateway's token." in closed["description"]
