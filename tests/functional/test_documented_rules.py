"""The OpenAPI document says what the validators refuse.

Each rule of a request is declared once, in its model, and reaches the
document as JSON Schema (a pattern, an enum, oneOf, bounds); a request the
document forbids is a 400 naming the field, and one it allows is not
refused for the rule. What JSON Schema cannot state (one time later than
another, a room listed twice) is said in the field's description.
"""

from urllib.parse import quote

import orjson
import pytest
from openapi_schema_validator import OAS31Validator

from tests.functional.test_registry_api import Api
from tests.support.openapi import DOCUMENT_KEY, URI, checker_of

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30}}
ROOM = {
    "id": "den",
    "name": "Den",
    "site": "oak",
    "floor": None,
    "max_stay_minutes": None,
    "adjacent": [],
}


@pytest.fixture
def db_url(sqlite_url):
    # The rules are the models'; one database kind will do.
    return sqlite_url


@pytest.fixture
def api(admin):
    return Api(admin)


@pytest.fixture
def document(admin):
    return checker_of(admin.app.registry[DOCUMENT_KEY])


def body_schema(document, method: str, path: str) -> OAS31Validator:
    """The validator of the JSON body the document gives ``method path``."""
    pointer, _ = document.operation(method, path)
    pointer += "/requestBody/content/application~1json/schema"
    return OAS31Validator({"$ref": f"{URI}#{pointer}"}, registry=document.registry)


def parameter(document, method: str, path: str, name: str) -> dict:
    """The document's parameter ``name`` of ``method path``."""
    _, operation = document.operation(method, path)
    [found] = [p for p in operation["parameters"] if p["name"] == name]
    return found


def fields(response) -> set[str]:
    assert response.json["error"] == "invalid"
    return {error["field"] for error in response.json["errors"]}


def site(api, site_id="oak"):
    api.post("/sites", {"id": site_id, "name": "Oak", "timezone": "Europe/London"})


# ---- names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Oak\x00House",
        "Oak\nHouse",
        "Oak\x7f",
        "Room \u202e4",
        "\u2066Oak",
        "   ",
        "",
    ],
)
def test_a_name_the_document_refuses_is_400_naming_it(api, document, name):
    body = {"id": "oak", "name": name, "timezone": "Europe/London"}
    assert not body_schema(document, "POST", "/sites").is_valid(body)
    assert fields(api.post("/sites", body, status=400)) == {"name"}


@pytest.mark.parametrize(
    ("method", "path", "member"),
    [
        ("PUT", "/rooms/lounge", "name"),
        ("PUT", "/beacons/b1", "label"),
        ("PUT", "/registry/gateways/g1", "name"),
        ("PUT", "/registry/badges/badge-1", "wearer"),
    ],
)
def test_every_name_carries_the_pattern(api, document, method, path, member):
    # Each is refused by the model before any row is looked for.
    body = {member: "Mrs\x1bB."}
    assert not body_schema(document, method, path).is_valid(body)
    assert fields(api.put(path, body, status=400)) == {member}
    assert body_schema(document, method, path).is_valid({member: "Mrs B."})


# ---- timezones ----------------------------------------------------------------


@pytest.mark.parametrize("timezone", ["", "Mars/Olympus", "europe/london"])
def test_a_timezone_the_document_refuses_is_400_naming_it(api, document, timezone):
    body = {"id": "oak", "name": "Oak", "timezone": timezone}
    assert not body_schema(document, "POST", "/sites").is_valid(body)
    response = api.post("/sites", body, status=400)
    assert response.json["errors"] == [
        {
            "field": "timezone",
            "message": "must be an IANA timezone name, e.g. Europe/London",
        }
    ]
    site(api)
    change = {"timezone": timezone}
    assert not body_schema(document, "PUT", "/sites/oak").is_valid(change)
    assert fields(api.put("/sites/oak", change, status=400)) == {"timezone"}


def test_the_document_lists_the_timezones(document):
    body = {"id": "oak", "name": "Oak", "timezone": "Pacific/Auckland"}
    assert body_schema(document, "POST", "/sites").is_valid(body)


# ---- "" as none ---------------------------------------------------------------


def test_an_empty_room_or_site_is_documented_and_is_none(api, document):
    site(api)
    api.post("/rooms", {"id": "lounge", "name": "Lounge", "site": "oak"})
    api.post("/beacons", {"id": "b1", "room": "lounge"})
    assert body_schema(document, "PUT", "/beacons/b1").is_valid({"room": ""})
    assert api.put("/beacons/b1", {"room": ""}).json["room"] is None
    api.put("/registry/gateways/g1", {"site": "oak"}, status=201)
    assert body_schema(document, "PUT", "/registry/gateways/g1").is_valid({"site": ""})
    assert api.put("/registry/gateways/g1", {"site": ""}).json["site"] is None
    api.put("/registry/badges/badge-1", {"site": "oak"}, status=201)
    assert api.put("/registry/badges/badge-1", {"site": ""}).json["site"] is None


def test_an_id_with_a_space_is_still_refused(api, document):
    assert not body_schema(document, "PUT", "/beacons/b1").is_valid({"room": "a b"})
    assert fields(api.put("/beacons/b1", {"room": "a b"}, status=400)) == {"room"}


# ---- whole numbers --------------------------------------------------------------


def test_a_whole_float_is_an_integer_as_the_document_says(testapp, document):
    reading = {**READING, "beacons": {"a": -67.0}, "badge_strength": -40.0}
    assert body_schema(document, "POST", "/rssi_readings").is_valid(reading)
    stored = testapp.post_json("/rssi_readings", reading, status=201).json
    assert stored["beacons"] == {"a": -67}
    assert stored["badge_strength"] == -40


def test_a_fraction_is_refused_by_both(testapp, document):
    reading = {**READING, "beacons": {"a": -67.5}}
    assert not body_schema(document, "POST", "/rssi_readings").is_valid(reading)
    response = testapp.post_json("/rssi_readings", reading, status=400)
    assert fields(response) == {"beacons.a"}


def test_a_floor_may_be_written_as_a_whole_float(api, document):
    site(api)
    room = {"id": "lounge", "name": "Lounge", "site": "oak", "floor": 2.0}
    assert body_schema(document, "POST", "/rooms").is_valid(room)
    assert api.post("/rooms", room).json["floor"] == 2


# ---- training runs --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"badge_ids": None},
        {"run_ids": None},
        {"badge_ids": ["b1"], "run_ids": [1]},
    ],
)
def test_bulk_end_needs_exactly_one_kind_of_id(api, document, body):
    assert not body_schema(document, "POST", "/training_runs/bulk_end").is_valid(body)
    response = api.post("/training_runs/bulk_end", body, status=400)
    assert fields(response) in ({"body"}, {"badge_ids"}, {"run_ids"})


def test_bulk_end_by_badge_is_documented(document):
    validator = body_schema(document, "POST", "/training_runs/bulk_end")
    assert validator.is_valid({"badge_ids": ["b1"]})
    assert validator.is_valid({"run_ids": [1]})


@pytest.mark.parametrize("run_ids", ["0", "9999999999", "0,1"])
def test_a_run_id_no_run_has_is_left_out_as_documented(api, document, run_ids):
    schema = parameter(document, "GET", "/training_runs/bulk_stats", "run_ids")
    assert OAS31Validator(schema["schema"]).is_valid(run_ids)
    assert api.get(f"/training_runs/bulk_stats?run_ids={run_ids}").json["runs"] == []


def test_more_run_ids_than_documented_are_refused(api, document):
    run_ids = ",".join(["1"] * 201)
    schema = parameter(document, "GET", "/training_runs/bulk_stats", "run_ids")
    assert not OAS31Validator(schema["schema"]).is_valid(run_ids)
    response = api.get(f"/training_runs/bulk_stats?run_ids={run_ids}", status=400)
    assert fields(response) == {"run_ids"}


# ---- rules JSON Schema cannot state ---------------------------------------------


@pytest.mark.parametrize(
    "until",
    ["2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "2026-01-01T01:00:00+01:00"],
)
def test_until_not_after_since_is_described_and_refused(api, document, until):
    # The model's rule, the only check: the same 400 for equal, earlier,
    # and the same instant written with another offset.
    described = parameter(document, "GET", "/rssi_readings", "until")
    assert "later than since" in described["description"]
    response = api.get(
        f"/rssi_readings?since=2026-01-01T00:00:00Z&until={quote(until)}",
        status=400,
    )
    assert response.json["errors"] == [
        {"field": "until", "message": "must be later than since"}
    ]


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/badges/b1/location", "LocationBody"),
        ("/badges/b1/location_history", "HistoryBody"),
    ],
)
def test_a_room_listed_twice_is_described_and_refused(api, document, path, model):
    body = {"priors": [["kitchen", 1], ["kitchen", 2]]}
    # What JSON Schema cannot say, the description does.
    assert body_schema(document, "POST", path).is_valid(body)
    priors = document.document["components"]["schemas"][model]["properties"]
    # On the property, or on its array beside null (HistoryBody's).
    described = [priors["priors"], *priors["priors"].get("anyOf", [])]
    assert any("each room at most once" in s.get("description", "") for s in described)
    # Parsed before the badge is looked for: no readings are needed.
    response = api.post(path, body, status=400)
    assert response.json["errors"] == [
        {"field": "priors", "message": "room 'kitchen' is listed twice"}
    ]


# ---- import files -----------------------------------------------------------------


def import_body(document, kind: str) -> OAS31Validator:
    """The validator of the JSON file the document gives POST /import/{kind}."""
    return body_schema(document, "POST", f"/import/{kind}")


def import_json(api, kind: str, body, status=200):
    return api.raw(f"/import/{kind}", orjson.dumps(body), "application/json", status)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        # Each member of an exported room, but an id no room can have.
        ("rooms", {"rooms": [{**ROOM, "id": ""}]}),
        ("rooms", [{"id": ""}]),
        ("rooms", {"rooms": [{"id": "den", "name": "Den"}]}),  # no site
        ("rooms", {"rooms": [{"id": "den", "name": "Den\x00", "site": "oak"}]}),
        (
            "rooms",
            {"rooms": [{**ROOM, "floor": 1.5}]},
        ),
        ("beacons", {"beacons": [{"id": "b 1"}]}),
        ("beacons", [{"id": "b1", "label": "\u202e"}]),
        ("beacons", [1]),
    ],
)
def test_an_import_row_the_document_refuses_is_400(api, document, kind, body):
    site(api)
    assert not import_body(document, kind).is_valid(body)
    response = import_json(api, kind, body, status=400)
    assert all(field.startswith("0") for field in fields(response))


def test_an_import_may_hold_only_its_rows(api, document):
    # The export's object has the one member; another is not documented.
    assert import_body(document, "rooms").is_valid({"rooms": [ROOM]})
    assert not import_body(document, "rooms").is_valid({"rooms": [ROOM], "x": []})
    assert not import_body(document, "rooms").is_valid({"rows": [ROOM]})
    assert not import_body(document, "rooms").is_valid({"rooms": [ROOM] * 10_001})
    site(api)
    import_json(api, "rooms", {"rooms": [ROOM], "x": []}, status=400)


@pytest.mark.parametrize("whole", [True, False])
def test_the_export_is_an_import_the_document_allows(api, document, whole):
    site(api)
    api.post("/rooms", {"id": "hall", "name": "Hall", "site": "oak", "floor": 0})
    api.post(
        "/rooms", {"id": "den", "name": "Den", "site": "oak", "adjacent": ["hall"]}
    )
    api.post("/beacons", {"id": "b1", "room": "den", "label": "door"})
    api.post("/beacons", {"id": "b2"})
    for kind in ("rooms", "beacons"):
        exported = api.get(f"/export/{kind}").json
        body = exported if whole else exported[kind]
        assert import_body(document, kind).is_valid(body)
        assert import_json(api, kind, body).json["unchanged"] == 2
    # Members a row does not know (as a spreadsheet's extra column) are left.
    extra = [{"id": "b3", "room": "hall", "label": None, "note": "new"}]
    assert import_body(document, "beacons").is_valid(extra)
    assert import_json(api, "beacons", extra).json["created_ids"] == ["b3"]


# ---- query strings ------------------------------------------------------------------


def test_an_id_with_a_semicolon_is_one_query_parameter(api, document):
    # Only "&" separates parameters: a site's id may hold ";".
    site_id = "s;x"
    schema = parameter(document, "GET", "/rooms", "site")["schema"]
    assert OAS31Validator(schema).is_valid(site_id)
    site(api, site_id)
    api.post("/rooms", {"id": "den", "name": "Den", "site": site_id})
    site(api, "s")
    api.post("/rooms", {"id": "hall", "name": "Hall", "site": "s"})
    rooms = api.get(f"/rooms?site={site_id}").json["rooms"]
    assert [room["id"] for room in rooms] == ["den"]
    exported = api.get(f"/export/beacons?format=json;&site={site_id}", status=400)
    assert fields(exported) == {"format"}


# ---- devices named before they are heard --------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [("/registry/gateways/{}", {"name": "Hall"}), ("/registry/badges/{}", {})],
)
def test_an_id_no_device_can_have_is_a_documented_400(api, document, path, body):
    _, operation = document.operation("PUT", path.format("g1"))
    assert (
        "1 to 64 printable characters" in operation["responses"]["400"]["description"]
    )
    response = api.put(path.format("a%20b"), body, status=400)
    assert response.json["errors"] == [
        {"field": "id", "message": "1 to 64 printable characters, no spaces"}
    ]
