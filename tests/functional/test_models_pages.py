"""The models pages: versions per site, a version's figures and heat-map,
activate and roll back by form, refusals shown, time zones, permissions."""

import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.learning.models import ModelActivation, ModelVersion
from tests.conftest import login
from tests.support.models import add_site, corrupt_model, register_model

HTML = {"Accept": "text/html"}
ROOMS = ["kitchen", "lounge", "hall"]


@pytest.fixture
def app_settings(app_settings):
    return {**app_settings, "stethoscope.models.refresh_seconds": "0"}


@pytest.fixture
def model_dir(app_settings):
    return app_settings["stethoscope.model_dir"]


@pytest.fixture
def versions(engine, model_dir):
    """Rose (Auckland time) with versions 1 and 2; oak with none."""
    add_site(engine, "rose", ROOMS, timezone="Pacific/Auckland")
    add_site(engine, "oak", ["study"])
    return [
        register_model(engine, model_dir, "rose", ROOMS, accuracy=0.9),
        register_model(
            engine,
            model_dir,
            "rose",
            ROOMS,
            accuracy=0.93,
            warnings=["hall: only 2 runs", "lounge: few readings"],
        ),
    ]


def activations(engine) -> list[tuple[int, str, str]]:
    with Session(engine) as session:
        rows = session.scalars(select(ModelActivation).order_by(ModelActivation.id))
        return [(row.model_version_id, row.action, row.activated_by) for row in rows]


def audited(engine) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.startswith("model."))
                .order_by(AuditEvent.id)
            )
        )


def row_texts(table) -> list[list[str]]:
    return [
        [cell.get_text(" ", strip=True) for cell in row.find_all(["td", "th"])]
        for row in table.find("tbody").find_all("tr")
    ]


def test_no_models_yet(admin):
    page = admin.get("/admin/models", headers=HTML)
    assert "No models yet" in page.text
    assert "stethoscope-train" in page.text


def test_the_admin_navigation_links_to_models(admin):
    page = admin.get("/admin/users", headers=HTML)
    link = page.html.find("nav", class_="admin-nav").find("a", string="Models")
    assert link["href"] == "http://localhost/admin/models"
    models = admin.get("/admin/models", headers=HTML).html
    current = models.find("nav", class_="admin-nav").find(attrs={"aria-current": True})
    assert current.get_text() == "Models"


def test_versions_per_site(admin, versions):
    page = admin.get("/admin/models", headers=HTML)

    section = page.html.find("section", attrs={"data-site-id": "rose"})
    assert "Rose" in section.find("h2").get_text()
    assert "None: no model locates" in section.find(attrs={"data-field": "active"}).text
    table = section.find("table", id="versions-rose")
    rows = table.find("tbody").find_all("tr")
    assert [row["data-model-id"] for row in rows] == [str(v) for v in versions[::-1]]
    newest = row_texts(table)[0]
    assert newest[:2] == ["2", "forest"]
    assert "NZDT" in newest[2]  # created, in the site's zone
    assert newest[3:6] == ["trainer", "18", "6"]
    # 2026-11-20 09:00 UTC is 22:00 in Auckland (NZDT, +13).
    assert newest[6].startswith("2026-11-20 22:00:00 NZDT")
    assert newest[7:14] == [
        "93.0 %",
        "85.0 %",
        "96.0 %",
        "93.0 %",
        "0.310",
        "12.3 s",
        "2",
    ]
    assert page.forms[f"activate-{versions[1]}"]
    assert "Never activated." in section.find(id="activations-rose").text
    # Oak has no versions: named, not given a section.
    assert page.html.find("section", attrs={"data-site-id": "oak"}) is None
    assert "No models yet for: Oak" in page.text


def test_activate_and_roll_back_by_form(admin, versions, engine):
    page = admin.get("/admin/models", headers=HTML)
    done = page.forms[f"activate-{versions[0]}"].submit(headers=HTML, status=303)
    assert done.location == "http://localhost/admin/models"
    page = done.follow(headers=HTML)
    assert "Activated model 1 of rose (forest)" in page.html.find(class_="flashes").text

    page = (
        page.forms[f"activate-{versions[1]}"].submit(headers=HTML).follow(headers=HTML)
    )
    section = page.html.find("section", attrs={"data-site-id": "rose"})
    assert (
        "Model 2 (forest), activated"
        in section.find(attrs={"data-field": "active"}).text
    )
    assert "Model 2, loaded" in section.find(attrs={"data-field": "serving"}).text
    active_row = section.find("tr", class_="active-model")
    assert active_row["data-model-id"] == str(versions[1])
    assert active_row.find(attrs={"data-field": "state"}).text.strip() == "Active"
    history = row_texts(section.find(id="activations-rose"))
    assert [row[1:] for row in history] == [
        ["Activated", "2", "boss"],
        ["Activated", "1", "boss"],
    ]
    assert "NZDT" in history[0][0]

    page = (
        page.forms["rollback-rose"]
        .submit(headers=HTML, status=303)
        .follow(headers=HTML)
    )
    assert "Rolled back: model 1 of rose (forest) is the active model again" in (
        page.text
    )
    assert activations(engine) == [
        (versions[0], "activate", "boss"),
        (versions[1], "activate", "boss"),
        (versions[0], "rollback", "boss"),
    ]
    assert audited(engine) == ["model.activate", "model.activate", "model.rollback"]


def test_activate_from_a_version_returns_to_it(admin, versions):
    page = admin.get(f"/admin/models/{versions[1]}", headers=HTML)
    done = page.forms[f"activate-{versions[1]}"].submit(headers=HTML, status=303)
    assert done.location == f"http://localhost/admin/models/{versions[1]}"
    page = done.follow(headers=HTML)
    assert "Active</strong>: it locates Rose" in page.text
    assert f"activate-{versions[1]}" not in page.forms


def test_a_corrupt_artifact_is_refused_with_a_message(
    admin, versions, engine, model_dir
):
    page = admin.get("/admin/models", headers=HTML)
    corrupt_model(engine, model_dir, versions[1])

    page = page.forms[f"activate-{versions[1]}"].submit(headers=HTML, status=303)
    page = page.follow(headers=HTML)

    alert = page.html.find(attrs={"role": "alert"}).text
    assert "Nothing changed: model 2 of rose cannot be activated" in alert
    assert "has been changed since it was written" in alert
    assert page.html.find(class_="flashes", attrs={"role": "status"}) is None
    assert activations(engine) == []
    assert audited(engine) == []


def test_a_refused_rollback_says_why(admin, versions, engine):
    page = admin.get("/admin/models", headers=HTML)
    page = (
        page.forms[f"activate-{versions[0]}"].submit(headers=HTML).follow(headers=HTML)
    )
    page = (
        page.forms["rollback-rose"]
        .submit(headers=HTML, status=303)
        .follow(headers=HTML)
    )
    alert = page.html.find(attrs={"role": "alert"}).text
    assert "no earlier model to roll back to" in alert
    assert len(activations(engine)) == 1


def test_rollback_of_an_unknown_site_is_400(admin, versions):
    form = admin.get("/admin/models", headers=HTML).forms[f"activate-{versions[0]}"]
    token = form["csrf_token"].value
    admin.post(
        "/admin/models/rollback",
        {"csrf_token": token, "site_id": "nowhere"},
        headers=HTML,
        status=400,
    )


def test_a_version_page(admin, versions):
    page = admin.get(f"/admin/models/{versions[1]}", headers=HTML)
    html = page.html

    assert html.find("h1").get_text(" ", strip=True) == "Model 2 of Rose (forest)"
    assert (
        "Not active (no model of Rose is)."
        in html.find(attrs={"data-field": "status"}).text
    )
    assert "StratifiedGroupKFold, 5 folds, grouped by training run" in page.text
    assert html.find(attrs={"data-field": "accuracy"}).text == "93.0 %"
    assert html.find(attrs={"data-field": "balanced_accuracy"}).text == "85.0 %"
    assert [li.text for li in html.find(id="warnings").find_all("li")] == [
        "hall: only 2 runs",
        "lounge: few readings",
    ]
    assert row_texts(html.find(id="per-room")) == [
        ["Hall (hall)", "90.0 %", "80.0 %", "0.85", "48"],
        ["Kitchen (kitchen)", "90.0 %", "80.0 %", "0.85", "44"],
        ["Lounge (lounge)", "90.0 %", "80.0 %", "0.85", "46"],
    ]
    assert row_texts(html.find(id="calibration")) == [
        ["55.0 %", "50.0 %", "10"],
        ["95.0 %", "97.0 %", "90"],
    ]
    candidates = html.find(id="candidates")
    assert row_texts(candidates) == [
        ["forest", "0.350", "85.0 %", "93.0 %", "1.5 s", "Selected"],
        ["knn", "0.520", "70.0 %", "80.0 %", "0.4 s", ""],
    ]
    assert "chosen by balanced log loss" in page.text


def test_the_confusion_heat_map(admin, versions):
    html = admin.get(f"/admin/models/{versions[1]}", headers=HTML).html
    table = html.find("table", id="confusion")

    header = [th.get_text(" ", strip=True) for th in table.find("thead").find_all("th")]
    assert header[1:] == [
        "Kitchen (kitchen)",
        "Lounge (lounge)",
        "Hall (hall)",
        "Readings",
    ]
    rows = table.find("tbody").find_all("tr")
    cells = [
        [(td.text, [c for c in td["class"] if c != "num"]) for td in row.find_all("td")]
        for row in rows
    ]
    # Row kitchen: 40 of 44 on the diagonal (0.91 → heat-9), 2 of 44 (→ heat-0).
    assert cells[0] == [
        ("40", ["heat-9", "diagonal"]),
        ("2", ["heat-0"]),
        ("2", ["heat-0"]),
        ("44", []),
    ]
    # Row lounge: 3 of 46 is 6.5 % (→ heat-1).
    assert cells[1] == [
        ("3", ["heat-1"]),
        ("40", ["heat-9", "diagonal"]),
        ("3", ["heat-1"]),
        ("46", []),
    ]
    # No inline style anywhere: the CSP allows only the stylesheet.
    assert 'style="' not in str(html)


def test_missing_and_odd_metrics_still_render(admin, engine, versions):
    with Session(engine) as session, session.begin():
        version = ModelVersion(
            site_id="rose",
            version=3,
            algorithm="knn",
            directory="rose/by-hand",
            sha256="0" * 64,
            sklearn_version="1.5.0",
            n_readings=0,
            n_runs=0,
            metrics={
                "accuracy": "high",
                "confusion": {"rooms": ["kitchen"], "matrix": [[1, 2]]},
                "calibration": {"bins": ["x"]},
                "candidates": ["forest"],
                "per_room": {"kitchen": {}},
            },
            created_at=datetime.datetime(2026, 11, 28, tzinfo=datetime.UTC),
            created_by="hand",
        )
        session.add(version)
        session.flush()
        version_id = version.id

    page = admin.get(f"/admin/models/{version_id}", headers=HTML)
    assert page.html.find(attrs={"data-field": "accuracy"}).text == "—"
    assert "None." in page.text  # warnings
    assert page.html.find(id="confusion") is None
    assert row_texts(page.html.find(id="per-room")) == [
        ["Kitchen (kitchen)", "—", "—", "—", "—"]
    ]
    listing = admin.get("/admin/models", headers=HTML).html
    row = listing.find("tr", attrs={"data-model-id": str(version_id)})
    assert [td.text for td in row.find_all("td")][7:14] == ["—"] * 6 + ["0"]


def test_unknown_version_page_is_404(admin, versions):
    admin.get("/admin/models/999", headers=HTML, status=404)
    admin.get("/admin/models/99999999999", headers=HTML, status=404)


def test_only_admins(testapp, anonymous, make_app, create_user, versions):
    for url in ("/admin/models", f"/admin/models/{versions[0]}"):
        testapp.get(url, headers=HTML, status=403)
        to_login = anonymous.get(url, headers=HTML, status=303)
        assert to_login.location.startswith("http://localhost/login?next=")
    staff = make_app()
    login(staff, *create_user("nurse", "staff"))
    staff.get("/admin/models", headers=HTML, status=403)
    # The Admin link is not offered below admin.
    assert "/admin/models" not in testapp.get("/", headers=HTML).text
