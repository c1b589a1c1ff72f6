"""GET /docs, /docs/{page} and /openapi.json, and that the API is documented."""

import datetime
import html
import re
from pathlib import Path

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

import stethoscope
from tests.conftest import login

DOCS_DIR = Path(stethoscope.__file__).parent.parent / "docs" / "api"
PAGES = sorted(path.stem for path in DOCS_DIR.glob("*.md"))
# HTML pages (the dashboard, logging in and out, the admin pages) and the
# documentation itself; every other route is JSON API.
NOT_API_ROUTES = {"apidocs.index", "apidocs.page"}
NOT_API_PREFIXES = ("__static", "accounts.", "admin.", "dashboard.")


def first_heading(name: str) -> str:
    text = (DOCS_DIR / f"{name}.md").read_text(encoding="utf-8")
    return re.search(r"^#+ (.+)$", text, re.MULTILINE).group(1).strip()


def test_there_are_pages():
    assert {"index", "rssi_readings", "gateways", "health"} <= set(PAGES)


class TestPages:
    @pytest.mark.parametrize("name", [name for name in PAGES if name != "index"])
    def test_each_page_renders_with_its_title(self, testapp, name):
        response = testapp.get(f"/docs/{name}", headers={"Accept": "text/html"})

        assert response.status_code == 200
        assert response.content_type == "text/html"
        title = html.escape(first_heading(name), quote=False)
        assert f"<title>{title} · Stethoscope API</title>" in response.text
        assert re.search(rf"<h1 id=\"[^\"]+\">{re.escape(title)}</h1>", response.text)
        # Extends the site layout.
        assert 'href="http://localhost/docs" aria-current="page"' in response.text

    def test_index_shows_the_introduction_and_lists_every_page(self, testapp):
        response = testapp.get("/docs", headers={"Accept": "text/html"})

        assert response.content_type == "text/html"
        assert f'<h1 id="stethoscope-api">{first_heading("index")}</h1>' in (
            response.text
        )
        listed = re.findall(
            r'<li><a href="http://localhost/docs/([^"]+)">([^<]+)</a></li>',
            response.text,
        )
        assert listed == [
            (name, html.escape(first_heading(name), quote=False))
            for name in PAGES
            if name != "index"
        ]
        assert 'href="http://localhost/openapi.json"' in response.text

    def test_index_page_redirects_to_the_index(self, testapp):
        response = testapp.get("/docs/index", status=302)
        assert response.location == "http://localhost/docs"

    def test_markdown_extensions_are_on(self, testapp):
        text = testapp.get("/docs/rssi_readings").text

        assert '<h2 id="duplicates">Duplicates</h2>' in text  # toc
        assert '<div class="toc">' in text
        assert "<th>Field</th>" in text  # tables
        assert "<pre><code>$ curl -si" in text  # fenced_code

    def test_unknown_page_is_404(self, testapp):
        response = testapp.get("/docs/no_such_page", status=404)
        assert response.json == {
            "status": 404,
            "error": "not_found",
            "message": "no documentation page 'no_such_page'",
            "request_id": response.headers["X-Request-ID"],
        }

    @pytest.mark.parametrize(
        "path",
        [
            "/docs/..%2F..%2Fsetup.py",
            "/docs/..%2Fapi%2Fhealth",
            "/docs/%2E%2E",
            "/docs/../setup.py",
            "/docs/health.md",
            "/docs/Health",
            "/docs/%2Fetc%2Fpasswd",
            "/docs/health%00",
        ],
    )
    def test_names_outside_the_pattern_are_404(self, testapp, path):
        testapp.get(path, status=404)

    def test_only_get(self, testapp):
        response = testapp.post("/docs/health", status=405)
        allowed = response.headers["Allow"].split(", ")
        assert "GET" in allowed
        assert "POST" not in allowed


def test_docs_directory_comes_from_the_setting(make_app, tmp_path):
    (tmp_path / "index.md").write_text("# Our intro\n")
    (tmp_path / "widgets.md").write_text("Some text\n\n## Widget API\n")
    (tmp_path / "Not_Served.md").write_text("# Hidden\n")
    testapp = make_app(**{"stethoscope.docs_dir": str(tmp_path)})

    index = testapp.get("/docs")
    assert '<h1 id="our-intro">Our intro</h1>' in index.text
    assert 'href="http://localhost/docs/widgets">Widget API</a>' in index.text
    assert "rssi_readings" not in index.text
    assert "Hidden" not in index.text
    testapp.get("/docs/rssi_readings", status=404)
    testapp.get("/docs/Not_Served", status=404)


class TestOpenAPI:
    def test_is_a_valid_openapi_3_1_document(self, testapp):
        response = testapp.get("/openapi.json")

        assert response.content_type == "application/json"
        assert response.json["openapi"] == "3.1.0"
        validate(response.json)

    def test_documents_every_json_route_and_method(self, testapp):
        routes, operations = _api_routes(testapp.app.registry)
        paths = testapp.get("/openapi.json").json["paths"]

        assert routes, "no API routes found: is the introspector on?"
        undocumented = sorted(path for path in routes.values() if path not in paths)
        assert not undocumented, f"routes missing from /openapi.json: {undocumented}"
        missing = sorted(
            (path, method)
            for path, method in operations
            if method not in paths.get(path, {})
        )
        assert not missing, f"operations missing from /openapi.json: {missing}"
        # And nothing documented that the app does not serve.
        documented = {
            (path, method)
            for path, item in paths.items()
            for method in item
            if method in {"get", "post", "put", "patch", "delete"}
        }
        assert documented == operations

    def test_limits_follow_the_settings(self, make_app):
        testapp = make_app(
            **{
                "stethoscope.ingest.max_beacons": "8",
                "stethoscope.ingest.max_batch_items": "50",
                "stethoscope.readings.page_limit": "40",
            }
        )
        document = testapp.get("/openapi.json").json

        post = document["paths"]["/rssi_readings"]["post"]
        single, batch = post["requestBody"]["content"]["application/json"]["schema"][
            "oneOf"
        ]
        assert single["allOf"][1]["properties"]["beacons"]["maxProperties"] == 8
        assert batch["maxItems"] == 50
        assert batch["items"]["allOf"][1]["properties"]["beacons"] == {
            "maxProperties": 8
        }
        parameters = document["paths"]["/rssi_readings"]["get"]["parameters"]
        limit = next(p for p in parameters if p["name"] == "limit")
        assert limit["schema"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 40,
            "default": 40,
        }

    def test_real_responses_match_the_document(self, testapp):
        """The documented response schemas describe what the app answers."""
        document = testapp.get("/openapi.json").json
        now = datetime.datetime.now(datetime.UTC)
        reading = {
            "badge_id": "badge-17",
            "pi_id": "pi-kitchen",
            "beacons": {"b-kitchen": -58, "b-hall": -71, "b-lounge": -128},
            "badge_strength": -62,
        }
        late = {
            **reading,
            "pi_id": "pi-lounge",
            "observed_at": (now - datetime.timedelta(hours=1)).isoformat(),
        }
        exchanges = [
            ("post", "/rssi_readings", reading, 201),
            ("post", "/rssi_readings", {**reading, "pi_id": "pi-hall"}, 409),
            ("post", "/rssi_readings", {**reading, "badge_id": "a b"}, 400),
            ("post", "/rssi_readings", [late, late, {**reading, "beacons": {}}], 200),
            ("get", "/rssi_readings?badge_id=badge-17&limit=5", None, 200),
            ("get", "/rssi_readings?after=x", None, 400),
            ("get", "/gateways", None, 200),
            ("get", "/badges", None, 200),
            ("get", "/health", None, 200),
        ]
        for method, url, body, status in exchanges:
            if method == "post":
                response = testapp.post_json(url, body, status=status)
            else:
                response = testapp.get(url, status=status)
            operation = document["paths"][url.split("?")[0]][method]
            _validate_body(document, operation, status, response.json)

        bodies = testapp.get("/gateways").json, testapp.get("/badges").json
        assert [g["id"] for g in bodies[0]["gateways"]] == [
            "pi-lounge",
            "pi-hall",
            "pi-kitchen",
        ]
        assert [b["id"] for b in bodies[1]["badges"]] == ["badge-17"]

    def test_error_responses_match_the_document(self, testapp, make_app, tmp_path):
        unavailable = make_app(
            **{"sqlalchemy.url": f"sqlite:///{tmp_path}/missing/directory.sqlite"}
        )
        # A viewer's session (same secret) on an app whose database is gone:
        # looking the session up is what fails, with 503 as for the rest.
        unavailable.set_cookie(
            "stethoscope_session", testapp.cookies["stethoscope_session"]
        )
        document = unavailable.get("/openapi.json").json
        for url in ("/gateways", "/badges", "/health", "/rssi_readings"):
            response = unavailable.get(url, status=503)
            assert response.headers["Retry-After"]
            operation = document["paths"][url]["get"]
            _validate_body(document, operation, 503, response.json)

        unavailable.reset()  # a gateway without a token: no lookup needed
        for status, kwargs in [
            (415, {"params": "{}", "content_type": "text/plain"}),
            (413, {"params": "[" + "0," * 1000 + "0]"}),
        ]:
            kwargs.setdefault("content_type", "application/json")
            response = unavailable.post("/rssi_readings", status=status, **kwargs)
            operation = document["paths"]["/rssi_readings"]["post"]
            _validate_body(document, operation, status, response.json)

    def test_refusals_match_the_document(self, make_app, create_user, engine):
        from sqlalchemy.orm import Session

        from stethoscope.registry.tokens import GatewayTokenService, TokenCache

        app = make_app(**{"stethoscope.ingest.require_token": "true"})
        document = app.get("/openapi.json").json
        with Session(engine) as session, session.begin():
            token, _ = GatewayTokenService(session, TokenCache(0)).create(
                "pi-kitchen", "test"
            )
        gateway = {"Authorization": f"Bearer {token}"}
        reading = {"badge_id": "badge-17", "pi_id": "pi-hall", "beacons": {}}
        exchanges = [
            ("get", "/rssi_readings", {}, 401),
            ("get", "/gateways", {}, 401),
            ("get", "/badges", {}, 401),
            ("get", "/gateways", gateway, 403),
            ("get", "/badges", gateway, 403),
            ("get", "/rssi_readings", gateway, 403),
            ("post", "/rssi_readings", {}, 401),
            ("post", "/rssi_readings", {"Authorization": "Bearer stg_x"}, 401),
            ("post", "/rssi_readings", gateway, 403),  # pi-hall, not pi-kitchen
        ]
        for method, url, headers, status in exchanges:
            if method == "post":
                response = app.post_json(url, reading, headers=headers, status=status)
            else:
                response = app.get(url, headers=headers, status=status)
            operation = document["paths"][url][method]
            assert operation["security"], url
            _validate_body(document, operation, status, response.json)
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer ")

        login(app, *create_user())
        response = app.post_json("/rssi_readings", reading, status=403)
        operation = document["paths"]["/rssi_readings"]["post"]
        _validate_body(document, operation, 403, response.json)


def test_reading_schema_is_generated_from_the_model(testapp):
    from stethoscope.ingest.schemas import ReadingIn

    document = testapp.get("/openapi.json").json
    generated = ReadingIn.model_json_schema(ref_template="#/components/schemas/{model}")
    assert document["components"]["schemas"]["ReadingIn"] == generated
    # The limit is a setting's: the operation adds it to the model's schema.
    post = document["paths"]["/rssi_readings"]["post"]
    single = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert single["allOf"] == [
        {"$ref": "#/components/schemas/ReadingIn"},
        {"properties": {"beacons": {"maxProperties": 32}}},
    ]


def _openapi_path(pattern: str) -> str:
    # Pyramid's {name:regex} placeholders are OpenAPI's {name}.
    path = re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", pattern)
    return "/" + path.lstrip("/")


def _is_api_route(name: str) -> bool:
    return name not in NOT_API_ROUTES and not name.startswith(NOT_API_PREFIXES)


def _api_routes(registry) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """API route name → OpenAPI path, and every (path, method) with a view."""
    introspector = registry.introspector
    routes = {}
    route_methods = {}
    for item in introspector.get_category("routes"):
        intr = item["introspectable"]
        if _is_api_route(intr["name"]):
            routes[intr["name"]] = _openapi_path(intr["pattern"])
            route_methods[intr["name"]] = intr["request_methods"]
    operations = set()
    for item in introspector.get_category("views"):
        intr = item["introspectable"]
        route_name = intr.get("route_name")
        if route_name not in routes:
            continue
        # The method may be a predicate of the view or of its route.
        methods = intr.get("request_methods") or route_methods[route_name]
        assert methods, f"a view of {route_name} takes any method: say which"
        if isinstance(methods, str):
            methods = [methods]
        operations.update(
            (routes[route_name], method.lower())
            for method in methods
            if method != "HEAD"
        )
    return routes, operations


def _validate_body(document, operation, status, body):
    response = operation["responses"][str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = document["components"]["responses"][name]
    schema = {
        **response["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    OAS31Validator(schema).validate(body)
