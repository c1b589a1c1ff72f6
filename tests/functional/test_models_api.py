"""Model versions over JSON: list, detail, activate, roll back, compare,
refusals and permissions (SQLite and PostgreSQL), on real artifacts."""

import pytest
from openapi_schema_validator import OAS31Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.learning.models import ModelActivation
from tests.conftest import login
from tests.support.models import add_site, corrupt_model, register_model

ROOMS = ["kitchen", "lounge", "hall"]


@pytest.fixture
def app_settings(app_settings):
    # Each request sees the newest activation: what "serving" says is exact.
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def model_dir(app_settings):
    return app_settings["stethoscope.model_dir"]


@pytest.fixture
def house(engine):
    add_site(engine, "rose", ROOMS, timezone="Europe/London")
    add_site(engine, "oak", ["study", "porch"], timezone="Pacific/Auckland")


@pytest.fixture
def versions(house, engine, model_dir):
    """Two versions of rose (1, then 2) and one of oak; none active."""
    return {
        "rose1": register_model(engine, model_dir, "rose", ROOMS, accuracy=0.90),
        "rose2": register_model(
            engine, model_dir, "rose", ROOMS, accuracy=0.93, warnings=["hall: 2 runs"]
        ),
        "oak1": register_model(engine, model_dir, "oak", ["study", "porch"]),
    }


def csrf(app) -> dict:
    token = app.get("/login", headers={"Accept": "text/html"}).forms["login"]
    return {"X-CSRF-Token": token["csrf_token"].value}


def post(app, url, body=None, status=200):
    return app.post_json(url, body or {}, headers=csrf(app), status=status)


def activations(engine) -> list[tuple[str, int, str, str]]:
    with Session(engine) as session:
        rows = session.scalars(select(ModelActivation).order_by(ModelActivation.id))
        return [
            (row.site_id, row.model_version_id, row.action, row.activated_by)
            for row in rows
        ]


def audit(engine, prefix="model.") -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.id)
        )
        return [(row.action, row.actor, row.target) for row in rows]


def test_no_models_yet(admin):
    assert admin.get("/models").json == {"versions": [], "sites": []}


def test_list_newest_first_with_summaries(admin, versions):
    body = admin.get("/models").json

    assert [v["id"] for v in body["versions"]] == [
        versions["oak1"],
        versions["rose2"],
        versions["rose1"],
    ]
    newest_rose = body["versions"][1]
    assert newest_rose["site_id"] == "rose"
    assert newest_rose["version"] == 2
    assert newest_rose["algorithm"] == "forest"
    assert newest_rose["active"] is False
    assert newest_rose["n_readings"] == 18
    assert newest_rose["n_runs"] == 6
    assert newest_rose["created_by"] == "trainer"
    assert newest_rose["data_start"] == "2026-11-20T09:00:00+00:00"
    # A summary: the headline figures and a count of warnings, no matrices.
    assert newest_rose["metrics"]["accuracy"] == 0.93
    assert newest_rose["metrics"]["smoothed"]["accuracy"] == pytest.approx(0.96)
    assert newest_rose["metrics"]["warnings"] == 1
    assert "confusion" not in newest_rose["metrics"]
    assert [site["site_id"] for site in body["sites"]] == ["oak", "rose"]
    assert body["sites"][1] == {
        "site_id": "rose",
        "active_version_id": None,
        "serving": None,
        "activations": [],
    }


def test_list_of_one_site(admin, versions):
    body = admin.get("/models?site_id=rose").json

    assert [v["id"] for v in body["versions"]] == [versions["rose2"], versions["rose1"]]
    assert [site["site_id"] for site in body["sites"]] == ["rose"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("site_id=nowhere", "no site 'nowhere'"),
        ("site_id=a%20b", "String should match pattern '^[!-~]+$'"),
    ],
)
def test_list_refuses_a_bad_site(admin, house, query, message):
    body = admin.get(f"/models?{query}", status=400).json
    assert body["error"] == "invalid"
    assert body["errors"] == [{"field": "site_id", "message": message}]


def test_detail_has_every_metric(admin, versions):
    body = admin.get(f"/models/{versions['rose2']}").json

    assert body["id"] == versions["rose2"]
    assert body["active"] is False
    assert body["metrics"]["confusion"]["rooms"] == ROOMS
    assert body["metrics"]["per_room"]["kitchen"]["recall"] == 0.8
    assert body["metrics"]["warnings"] == ["hall: 2 runs"]
    assert body["sha256"] and body["directory"].startswith("rose/v2-")


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("999", "no model version 999"),
        # Beyond the id column: no such row can exist.
        ("99999999999", "nothing here: /models/99999999999"),
    ],
)
def test_unknown_version_is_404(admin, house, model_id, message):
    body = admin.get(f"/models/{model_id}", status=404).json
    assert body["message"] == message
    post(admin, f"/models/{model_id}/activate", status=404)


def test_activate_then_roll_back(admin, versions, engine):
    first = post(admin, f"/models/{versions['rose1']}/activate").json
    assert first["activation"]["action"] == "activate"
    assert first["activation"]["model_version_id"] == versions["rose1"]
    assert first["activation"]["activated_by"] == "boss"
    assert first["version"]["active"] is True

    post(admin, f"/models/{versions['rose2']}/activate")
    listed = admin.get("/models?site_id=rose").json
    assert [v["active"] for v in listed["versions"]] == [True, False]
    site = listed["sites"][0]
    assert site["active_version_id"] == versions["rose2"]
    assert [a["version"] for a in site["activations"]] == [2, 1]
    # This process has loaded it (refresh_seconds = 0).
    assert site["serving"]["version"] == 2
    assert site["serving"]["error"] is None

    back = post(admin, "/models/rollback", {"site_id": "rose"}).json
    assert back["activation"]["action"] == "rollback"
    assert back["version"]["id"] == versions["rose1"]
    assert admin.get(f"/models/{versions['rose1']}").json["active"] is True
    assert activations(engine) == [
        ("rose", versions["rose1"], "activate", "boss"),
        ("rose", versions["rose2"], "activate", "boss"),
        ("rose", versions["rose1"], "rollback", "boss"),
    ]
    assert [(action, actor) for action, actor, _ in audit(engine, "model.a")] == [
        ("model.activate", "boss"),
        ("model.activate", "boss"),
    ]
    assert audit(engine, "model.r") == [("model.rollback", "boss", "rose v1")]
    # Other sites are untouched.
    assert admin.get("/models?site_id=oak").json["sites"][0]["activations"] == []


def test_activating_the_active_version_is_refused(admin, versions, engine):
    post(admin, f"/models/{versions['rose1']}/activate")

    body = post(admin, f"/models/{versions['rose1']}/activate", status=409).json
    assert body["error"] == "conflict"
    assert "already the active model" in body["message"]
    assert len(activations(engine)) == 1


def test_a_corrupt_artifact_is_refused_and_the_active_model_stays(
    admin, versions, engine, model_dir
):
    post(admin, f"/models/{versions['rose1']}/activate")
    corrupt_model(engine, model_dir, versions["rose2"])

    body = post(admin, f"/models/{versions['rose2']}/activate", status=409).json

    assert body["status"] == 409
    assert "model 2 of rose cannot be activated" in body["message"]
    assert "has been changed since it was written" in body["message"]
    assert activations(engine) == [("rose", versions["rose1"], "activate", "boss")]
    assert [action for action, _, _ in audit(engine)] == ["model.activate"]
    listed = admin.get("/models?site_id=rose").json
    assert listed["sites"][0]["active_version_id"] == versions["rose1"]
    assert listed["sites"][0]["serving"]["version"] == 1


def test_rollback_with_nothing_before_is_refused(admin, versions, engine):
    body = post(admin, "/models/rollback", {"site_id": "rose"}, status=409).json
    assert "no active model to roll back" in body["message"]

    post(admin, f"/models/{versions['rose2']}/activate")
    body = post(admin, "/models/rollback", {"site_id": "rose"}, status=409).json
    assert "no earlier model to roll back to" in body["message"]
    assert len(activations(engine)) == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "site_id", "Field required"),
        ({"site_id": "nowhere"}, "site_id", "no site 'nowhere'"),
        ({"site_id": 7}, "site_id", "Input should be a valid string"),
        ({"site_id": "rose", "site": "rose"}, "site", "is not a known field"),
        ([], "body", "must be a JSON object"),
    ],
)
def test_rollback_names_the_field_at_fault(admin, house, body, field, message):
    refused = admin.post_json(
        "/models/rollback", body, headers=csrf(admin), status=400
    ).json
    assert refused["errors"] == [{"field": field, "message": message}]


def test_rollback_needs_json(admin, house):
    admin.post(
        "/models/rollback",
        "site_id=rose",
        headers=csrf(admin),
        content_type="application/x-www-form-urlencoded",
        status=415,
    )


def test_compare(admin, versions):
    body = admin.get(f"/models/compare?a={versions['rose1']}&b={versions['rose2']}")

    assert body.json["same_site"] is True
    assert body.json["a"]["id"] == versions["rose1"]
    accuracy = next(m for m in body.json["metrics"] if m["name"] == "accuracy")
    assert accuracy["delta"] == pytest.approx(0.03)
    assert accuracy["better"] == "higher"
    assert [r["room"] for r in body.json["per_room_recall"]] == sorted(ROOMS)


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("b=1", "a", "Field required"),
        ("a=1", "b", "Field required"),
        ("a=x&b=1", "a", "must be a whole number"),
        ("a=1&b=999", "b", "no model version 999"),
    ],
)
def test_compare_names_the_parameter_at_fault(admin, versions, query, field, message):
    query = query.replace("1", str(versions["rose1"]), 1) if "a=1" in query else query
    query = query.replace("b=1", f"b={versions['rose1']}")
    body = admin.get(f"/models/compare?{query}", status=400).json
    assert body["errors"] == [{"field": field, "message": message}]


def test_only_admins(testapp, anonymous, make_app, create_user, versions):
    model_id = versions["rose1"]
    for url in ("/models", f"/models/{model_id}", "/models/compare?a=1&b=2"):
        testapp.get(url, status=403)
        anonymous.get(url, status=401)
    post(testapp, f"/models/{model_id}/activate", status=403)
    post(testapp, "/models/rollback", {"site_id": "rose"}, status=403)

    staff = make_app()
    login(staff, *create_user("nurse", "staff"))
    staff.get("/models", status=403)
    post(staff, f"/models/{model_id}/activate", status=403)


def test_unsafe_calls_need_the_csrf_header(admin, versions, engine):
    admin.post_json(f"/models/{versions['rose1']}/activate", {}, status=403)
    admin.post_json("/models/rollback", {"site_id": "rose"}, status=403)
    assert activations(engine) == []


def test_responses_match_the_openapi_document(admin, versions, engine, model_dir):
    document = admin.get("/openapi.json").json
    rose1, rose2 = versions["rose1"], versions["rose2"]
    corrupt_model(engine, model_dir, versions["oak1"])
    exchanges = [
        ("get", "/models", "/models", None, 200),
        ("get", "/models?site_id=x", "/models", None, 400),
        ("get", f"/models/{rose1}", "/models/{model_id}", None, 200),
        ("get", "/models/999", "/models/{model_id}", None, 404),
        ("post", f"/models/{rose1}/activate", "/models/{model_id}/activate", {}, 200),
        ("post", f"/models/{rose2}/activate", "/models/{model_id}/activate", {}, 200),
        (
            "post",
            f"/models/{versions['oak1']}/activate",
            "/models/{model_id}/activate",
            {},
            409,
        ),
        ("get", "/models", "/models", None, 200),
        ("post", "/models/rollback", "/models/rollback", {"site_id": "rose"}, 200),
        ("post", "/models/rollback", "/models/rollback", {"site_id": "oak"}, 409),
        ("post", "/models/rollback", "/models/rollback", {}, 400),
        ("get", f"/models/compare?a={rose1}&b={rose2}", "/models/compare", None, 200),
        ("get", "/models/compare?a=1", "/models/compare", None, 400),
    ]
    for method, url, path, body, status in exchanges:
        if method == "post":
            response = post(admin, url, body, status=status)
        else:
            response = admin.get(url, status=status)
        operation = document["paths"][path][method]
        validate_body(document, operation, status, response.json)


def validate_body(document, operation, status, body):
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/")[-1]]
    schema = {
        **response["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    OAS31Validator(schema).validate(body)
