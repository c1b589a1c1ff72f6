"""Model versions: register, activate, roll back, compare; every process
picking up the active model. On SQLite and PostgreSQL."""

import datetime
import logging
import os
import stat
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyramid.scripting import prepare
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from stethoscope.audit.models import AuditEvent
from stethoscope.learning.artifacts import MANIFEST_FILE, MODEL_FILE
from stethoscope.learning.models import ModelActivation, ModelVersion
from stethoscope.learning.services import (
    ActiveModels,
    ModelNotFound,
    ModelRefused,
    ModelService,
)
from stethoscope.learning.trainer import TrainingResult
from stethoscope.registry.models import Site
from stethoscope.singletons import ACTIVE_MODELS, DATABASE, MODEL_STORE
from tests.conftest import count
from tests.unit.learning.test_artifacts import ROOMS, room_model, untrusted_model

SITE = "rose"
START = datetime.datetime(2026, 11, 20, 9, 0, tzinfo=datetime.UTC)
REPO = Path(__file__).resolve().parents[2]


def metrics(balanced_accuracy=0.9, log_loss=0.3, recall=None, smoothed=True):
    recall = recall or dict.fromkeys(ROOMS, balanced_accuracy)
    figures = {
        "accuracy": balanced_accuracy + 0.02,
        "balanced_accuracy": balanced_accuracy,
        "log_loss": log_loss,
        "per_room": {
            room: {"precision": 0.9, "recall": value, "f1": 0.9, "support": 20}
            for room, value in recall.items()
        },
    }
    if smoothed:
        figures["smoothed"] = {
            "accuracy": balanced_accuracy + 0.05,
            "balanced_accuracy": balanced_accuracy + 0.04,
        }
    return figures


def result(seed=0, model=None, **figures) -> TrainingResult:
    return TrainingResult(
        model=model or room_model(seed=seed),
        algorithm="random_forest",
        metrics=metrics(**figures),
        warnings=["only one run in the kitchen"],
        n_readings=60,
        run_ids=[1, 2, 3],
        data_start=START,
        data_end=START + datetime.timedelta(hours=1),
    )


def add_site(engine, site_id=SITE):
    with Session(engine) as session, session.begin():
        session.add(Site(id=site_id, name=site_id.title(), timezone="Europe/London"))


@contextmanager
def service(app):
    """A ModelService from the app's own factory, in a committed transaction
    (as in a POST: the audit events are recorded by an anonymous request)."""
    env = prepare(registry=app.app.registry)
    request = env["request"]
    request.method = "POST"
    try:
        with request.tm:
            yield request.find_service(ModelService)
    finally:
        env["closer"]()


def register(app, seed=0, site_id=SITE, **figures) -> int:
    with service(app) as models:
        return models.register(site_id, result(seed, **figures), created_by="boss").id


def activate(app, version_id) -> ModelActivation:
    with service(app) as models:
        return models.activate(version_id, actor="boss")


def active_version(app, site_id=SITE) -> int | None:
    with service(app) as models:
        version = models.active(site_id)
        return version.version if version else None


def active_models(app) -> ActiveModels:
    return app.app.registry[ACTIVE_MODELS]


def store_root(app) -> Path:
    return app.app.registry[MODEL_STORE].root


def model_file(app, version_id, engine) -> Path:
    with Session(engine) as session:
        directory = session.get(ModelVersion, version_id).directory
    return store_root(app) / directory / MODEL_FILE


def clocked(app, **options) -> tuple[ActiveModels, list[float]]:
    """An ActiveModels of its own, and the clock it reads (move now[0])."""
    now = [1000.0]
    serving = ActiveModels(
        app.app.registry[DATABASE],
        app.app.registry[MODEL_STORE],
        monotonic=lambda: now[0],
        **options,
    )
    return serving, now


def tamper(app, version_id, engine):
    """Change a byte of the version's model file (the file is read-only)."""
    path = model_file(app, version_id, engine)
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    with path.open("ab") as handle:
        handle.write(b"\0")


@pytest.fixture
def app(make_app, engine):
    add_site(engine)
    return make_app(**{"stethoscope.models.refresh_seconds": "0"})


def test_register_writes_the_artifact_before_the_row(app, db):
    seen = []

    def before_insert(mapper, connection, target):
        manifest = store_root(app) / target.directory / MANIFEST_FILE
        seen.append(manifest.exists())

    event.listen(ModelVersion, "before_insert", before_insert)
    try:
        first = register(app)
        second = register(app, seed=1)
    finally:
        event.remove(ModelVersion, "before_insert", before_insert)
    assert seen == [True, True]
    db.rollback()
    rows = db.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
    assert [row.id for row in rows] == [first, second]
    assert [row.version for row in rows] == [1, 2]
    row = rows[0]
    assert row.directory.startswith(f"{SITE}/v1-")
    assert (row.algorithm, row.n_readings, row.n_runs) == ("random_forest", 60, 3)
    assert (row.data_start, row.data_end) == (
        START,
        START + datetime.timedelta(hours=1),
    )
    assert row.metrics["balanced_accuracy"] == 0.9
    assert row.metrics["warnings"] == ["only one run in the kitchen"]
    assert row.created_by == "boss"
    manifest = app.app.registry[MODEL_STORE].read_manifest(row.directory)
    assert manifest["files"][MODEL_FILE] == row.sha256
    assert manifest["training"]["run_ids"] == [1, 2, 3]
    assert manifest["training"]["data_start"] == START.isoformat()
    assert manifest["versions"]["scikit-learn"] == row.sklearn_version
    # Registering does not activate.
    assert active_version(app) is None


def test_a_model_that_cannot_be_stored_leaves_no_row(app, db):
    with pytest.raises(ModelRefused, match="does not trust"):
        register(app, model=untrusted_model())
    assert count(db, ModelVersion) == 0


def test_register_for_an_unknown_site_is_refused(app, db):
    with pytest.raises(ModelRefused, match="no site 'elsewhere'"):
        register(app, site_id="elsewhere")
    assert not (store_root(app) / "elsewhere").exists()


def test_activate_and_the_history(app, db):
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    assert active_version(app) == 1
    activate(app, second)
    assert active_version(app) == 2
    with service(app) as models:
        history = models.activations(SITE)
        assert [(a.model_version.version, a.action) for a in history] == [
            (2, "activate"),
            (1, "activate"),
        ]
        assert [v.version for v in models.versions(SITE)] == [2, 1]
        assert [v.version for v in models.versions()] == [2, 1]
        assert models.versions("elsewhere") == []
        assert models.sites_with_models() == [SITE]
        assert models.get(first).version == 1
        assert models.get(999) is None


def test_activating_the_active_version_is_refused(app, db):
    first = register(app)
    activate(app, first)
    with pytest.raises(ModelRefused, match="model 1 of rose is already the active"):
        activate(app, first)
    assert count(db, ModelActivation) == 1


def test_activating_an_unknown_version_is_refused(app):
    with pytest.raises(ModelNotFound, match="no model version 42"):
        activate(app, 42)


def test_a_corrupt_artifact_is_refused_and_the_active_model_stays(app, db, engine):
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    tamper(app, second, engine)
    with pytest.raises(ModelRefused) as refused:
        activate(app, second)
    message = str(refused.value)
    assert "model 2 of rose cannot be activated" in message
    assert "has been changed since it was written" in message
    assert "active model is unchanged" in message
    assert active_version(app) == 1
    assert count(db, ModelActivation) == 1


def test_a_missing_artifact_is_refused(app, db, engine):
    first = register(app)
    with Session(engine) as session:
        directory = store_root(app) / session.get(ModelVersion, first).directory
    directory.rename(directory.with_name("moved-away"))
    with pytest.raises(ModelRefused, match="is missing"):
        activate(app, first)
    assert active_version(app) is None


def test_rollback_goes_back_to_the_previous_version(app, db):
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    activate(app, second)
    with service(app) as models:
        rolled = models.rollback(SITE, actor="boss")
        assert (rolled.model_version_id, rolled.action) == (first, "rollback")
        assert rolled.activated_by == "boss"
    assert active_version(app) == 1
    # Rolling back again goes to what was active before model 1: model 2.
    with service(app) as models:
        assert models.rollback(SITE, actor="boss").model_version_id == second


def test_rollback_passes_over_a_version_that_no_longer_loads(app, db, engine):
    ids = [register(app, seed=seed) for seed in range(3)]
    for version_id in ids:
        activate(app, version_id)
    tamper(app, ids[1], engine)
    with service(app) as models:
        assert models.rollback(SITE, actor="boss").model_version_id == ids[0]


def test_rollback_without_an_earlier_version_is_refused(app, db, engine):
    with (
        pytest.raises(ModelRefused, match="no active model to roll back"),
        service(app) as models,
    ):
        models.rollback(SITE, actor="boss")
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    with (
        pytest.raises(ModelRefused, match="no earlier model to roll back to"),
        service(app) as models,
    ):
        models.rollback(SITE, actor="boss")
    activate(app, second)
    tamper(app, first, engine)
    with pytest.raises(ModelRefused) as refused, service(app) as models:
        models.rollback(SITE, actor="boss")
    assert "model 2 of rose stays active" in str(refused.value)
    assert "model 1 of rose: model file" in str(refused.value)
    assert active_version(app) == 2


def test_compare(app):
    first = register(app, balanced_accuracy=0.8, log_loss=0.5, smoothed=False)
    second = register(
        app,
        seed=1,
        balanced_accuracy=0.85,
        log_loss=0.4,
        recall={"bedroom": 0.9, "lounge": 0.7},
    )
    with service(app) as models:
        comparison = models.compare(first, second).model_dump(mode="json")
    assert (comparison["a"]["id"], comparison["b"]["id"]) == (first, second)
    assert comparison["same_site"]
    by_name = {row["name"]: row for row in comparison["metrics"]}
    assert list(by_name) == [
        "accuracy",
        "balanced_accuracy",
        "log_loss",
        "smoothed.accuracy",
        "smoothed.balanced_accuracy",
    ]
    assert by_name["balanced_accuracy"]["delta"] == pytest.approx(0.05)
    assert by_name["log_loss"]["delta"] == pytest.approx(-0.1)
    assert by_name["log_loss"]["better"] == "lower"
    assert by_name["smoothed.accuracy"]["a"] is None
    assert by_name["smoothed.accuracy"]["delta"] is None
    recall = {row["room"]: row for row in comparison["per_room_recall"]}
    assert list(recall) == ["bedroom", "kitchen", "lounge"]
    assert recall["bedroom"]["delta"] == pytest.approx(0.1)
    assert recall["kitchen"] == {"room": "kitchen", "a": 0.8, "b": None, "delta": None}
    with service(app) as models, pytest.raises(ModelNotFound):
        models.compare(first, 999)


def test_changes_are_audited(app, db):
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    activate(app, second)
    with service(app) as models:
        models.rollback(SITE, actor="boss")
    db.rollback()
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.target) for e in events] == [
        ("model.train", "rose v1"),
        ("model.train", "rose v2"),
        ("model.activate", "rose v1"),
        ("model.activate", "rose v2"),
        ("model.rollback", "rose v1"),
    ]
    assert events[0].details["model_version_id"] == first
    assert events[3].details == {
        "model_version_id": second,
        "previous_model_version_id": first,
        "previous_version": 1,
    }


def test_a_refused_activation_audits_nothing(app, db, engine):
    first = register(app)
    tamper(app, first, engine)
    with pytest.raises(ModelRefused):
        activate(app, first)
    db.rollback()
    assert db.scalars(select(AuditEvent.action)).all() == ["model.train"]


def test_is_not_worse():
    active = ModelVersion(metrics={"balanced_accuracy": 0.80, "log_loss": 0.50})
    rule = ModelService.is_not_worse
    assert rule({"balanced_accuracy": 0.80, "log_loss": 0.50}, active)
    assert rule({"balanced_accuracy": 0.797, "log_loss": 0.505}, active)
    assert rule({"balanced_accuracy": 0.90, "log_loss": 0.30}, active)
    assert not rule({"balanced_accuracy": 0.79, "log_loss": 0.40}, active)
    assert not rule({"balanced_accuracy": 0.85, "log_loss": 0.52}, active)
    assert not rule({"log_loss": 0.40}, active)
    # What the active version lacks is not compared.
    assert rule({"balanced_accuracy": 0.5}, ModelVersion(metrics={}))


# ---- every process serves the active model ----------------------------------------


def test_another_app_picks_up_activations(app, make_app):
    other = make_app(**{"stethoscope.models.refresh_seconds": "0"})
    serving = active_models(other)
    assert serving.get(SITE) is None
    assert serving.status() == {}
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    loaded = serving.get(SITE)
    assert (loaded.version_id, loaded.version, loaded.site_id) == (first, 1, SITE)
    assert loaded.algorithm == "random_forest"
    assert loaded.model.rooms == ROOMS
    activate(app, second)
    assert serving.get(SITE).version == 2
    with service(app) as models:
        models.rollback(SITE, actor="boss")
    assert serving.get(SITE).version == 1
    status = serving.status()[SITE]
    assert (status["version"], status["error"]) == (1, None)
    assert status["loaded_at"].tzinfo is not None


def test_a_model_that_fails_to_load_leaves_the_previous_one_served(
    app, make_app, engine, caplog
):
    other = make_app(**{"stethoscope.models.refresh_seconds": "0"})
    serving = active_models(other)
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    assert serving.get(SITE).version == 1
    activate(app, second)
    tamper(app, second, engine)  # after the activation checked it
    caplog.set_level(logging.ERROR, logger="stethoscope.learning.services")
    for _ in range(3):
        assert serving.get(SITE).version == 1
    status = serving.status()[SITE]
    assert status["version"] == 1
    assert "model 2 of rose" in status["error"]
    assert "has been changed since it was written" in status["error"]
    # Another activation (of another site) makes it try model 2 again; it
    # still fails, and is not logged again.
    add_site(engine, "ivy")
    activate(app, register(app, site_id="ivy"))
    assert serving.get("ivy").version == 1
    assert serving.get(SITE).version == 1
    errors = [r for r in caplog.records if "model 2 of rose" in r.getMessage()]
    assert len(errors) == 1


def test_a_model_that_failed_to_load_is_tried_again_after_retry_seconds(app, engine):
    """Missing for a moment (a network share away): served once it is back,
    at the next try, with no new activation."""
    serving, now = clocked(app, refresh_seconds=0, retry_seconds=60)
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    assert serving.get(SITE).version == 1
    activate(app, second)
    path = model_file(app, second, engine)
    away = path.with_name("away")
    path.rename(away)
    assert serving.get(SITE).version == 1
    assert "is missing" in serving.status()[SITE]["error"]
    away.rename(path)
    now[0] += 59
    assert serving.get(SITE).version == 1
    now[0] += 1
    assert serving.get(SITE).version == 2
    assert serving.status()[SITE]["error"] is None


def test_the_check_is_made_at_most_every_refresh_seconds(app):
    serving, now = clocked(app, refresh_seconds=2)
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    assert serving.get(SITE).version == 1
    activate(app, second)
    now[0] += 1.9
    assert serving.get(SITE).version == 1
    now[0] += 0.2
    assert serving.get(SITE).version == 2
    activate(app, first)
    serving.refresh()  # whatever the period
    assert serving.get(SITE).version == 1


def test_threads_always_get_a_whole_model(app, make_app):
    other = make_app(**{"stethoscope.models.refresh_seconds": "0"})
    serving = active_models(other)
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    seen, failures = set(), []

    def serve():
        try:
            for _ in range(30):
                loaded = serving.get(SITE)
                loaded.model.predict_proba([{"b-kitchen": -55}])
                seen.add(loaded.version)
        except Exception as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    activate(app, second)
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert seen <= {1, 2}
    assert serving.get(SITE).version == 2


WATCHER = """\
import sys
from pyramid.paster import bootstrap

env = bootstrap(sys.argv[1])
active = env["registry"]["stethoscope.active_models"]
for line in sys.stdin:
    loaded = active.get(line.strip())
    print(loaded.version if loaded else None, flush=True)
"""


def test_a_separate_process_picks_up_an_activation(app, ini, monkeypatch):
    """A running process (built from the ini, as a server is) serves the
    model activated by another process, without a restart."""
    monkeypatch.delenv("STETHOSCOPE_MODEL_DIR", raising=False)
    with open(ini, "a") as handle:
        handle.write("stethoscope.models.refresh_seconds = 0\n")
    first, second = register(app), register(app, seed=1)
    activate(app, first)
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, ini],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:

        def ask(site_id):
            watcher.stdin.write(site_id + "\n")
            watcher.stdin.flush()
            return watcher.stdout.readline().strip()

        assert ask(SITE) == "1"
        activate(app, second)
        assert ask(SITE) == "2"
        with service(app) as models:
            models.rollback(SITE, actor="boss")
        assert ask(SITE) == "1"
        assert ask("elsewhere") == "None"
    finally:
        watcher.stdin.close()
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()
        watcher.stdout.close()
    assert watcher.returncode == 0
