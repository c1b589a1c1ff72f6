"""stethoscope-models: list, activate, roll back and compare from the console."""

import json

import pytest
from sqlalchemy import select

from stethoscope.audit.models import AuditEvent
from stethoscope.learning.models import ModelActivation
from stethoscope.scripts import models
from tests.conftest import count
from tests.functional.test_model_versions import (
    SITE,
    activate,
    active_models,
    add_site,
    register,
    tamper,
)


@pytest.fixture
def app(make_app, engine):
    add_site(engine)
    return make_app(**{"stethoscope.models.refresh_seconds": "0"})


@pytest.fixture
def two(app):
    """Two versions of the site, the first active."""
    first = register(app, balanced_accuracy=0.8, log_loss=0.5)
    second = register(app, seed=1, balanced_accuracy=0.85, log_loss=0.4)
    activate(app, first)
    return first, second


def events(db) -> list[tuple]:
    """What the console recorded (the fixtures' own changes left out)."""
    db.rollback()
    return [
        (e.action, e.actor, e.actor_type, e.target)
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
        if e.actor_type == "console"
    ]


def test_list(ini, two, capsys):
    first, second = two
    assert models.main([ini, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "id", "site", "version", "algorithm", "bal.", "acc.", "log", "loss",
        "created", "by", "active",
    ]  # fmt: skip
    assert lines[1].split()[:6] == [
        str(second),
        SITE,
        "2",
        "random_forest",
        "0.850",
        "0.400",
    ]
    assert lines[1].split()[-1] == "boss"
    assert lines[2].split()[:3] == [str(first), SITE, "1"]
    assert lines[2].split()[-2:] == ["boss", "yes"]


def test_list_json(ini, two, capsys):
    first, second = two
    assert models.main([ini, "list", "--json", "--site", SITE]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["version"], r["active"]) for r in rows] == [
        (second, 2, False),
        (first, 1, True),
    ]
    assert rows[0]["metrics"]["balanced_accuracy"] == 0.85


def test_list_with_no_models(ini, app, capsys):
    assert models.main([ini, "list", "--site", SITE]) == 0
    assert "no models of site rose yet" in capsys.readouterr().out


def test_activate(ini, app, two, db, capsys):
    first, second = two
    serving = active_models(app)
    assert serving.get(SITE).version == 1
    assert models.main([ini, "activate", str(second)]) == 0
    assert capsys.readouterr().out == f"model 2 of rose (id {second}) is now active\n"
    # A running app (another process's view of the database) serves it.
    assert serving.get(SITE).version == 2
    assert events(db)[-1] == ("model.activate", "console:matron", "console", "rose v2")
    activation = db.scalars(
        select(ModelActivation).order_by(ModelActivation.id.desc())
    ).first()
    assert activation.activated_by == "console:matron"


def test_rollback(ini, app, two, db, capsys):
    first, second = two
    activate(app, second)
    assert models.main([ini, "rollback"]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"site rose rolled back to model 1 (id {first}); model 2 is no longer active\n"
    )
    assert active_models(app).get(SITE).version == 1
    assert events(db)[-1] == ("model.rollback", "console:matron", "console", "rose v1")


def test_rollback_needs_a_site_when_several_have_models(ini, app, two, engine, capsys):
    add_site(engine, "ivy")
    register(app, site_id="ivy")
    assert models.main([ini, "rollback"]) == 2
    assert "several sites have models (ivy, rose): name one with --site" in (
        capsys.readouterr().err
    )
    assert models.main([ini, "rollback", "--site", "ivy"]) == 2
    assert "site ivy has no active model to roll back" in capsys.readouterr().err


def test_refusals_exit_2_and_change_nothing(ini, app, two, db, engine, capsys):
    first, second = two
    before = count(db, ModelActivation)
    tamper(app, second, engine)
    assert models.main([ini, "activate", str(second)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 2 of rose cannot be activated: model file ")
    assert "has been changed since it was written" in err
    assert models.main([ini, "activate", str(first)]) == 2
    assert "model 1 of rose is already the active model" in capsys.readouterr().err
    assert models.main([ini, "activate", "999"]) == 2
    assert capsys.readouterr().err == "error: no model version 999\n"
    assert models.main([ini, "rollback"]) == 2
    assert "no earlier model to roll back to" in capsys.readouterr().err
    assert count(db, ModelActivation) == before
    assert events(db) == []


def test_compare(ini, two, capsys):
    first, second = two
    assert models.main([ini, "compare", str(first), str(second)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "a: rose v1 (random_forest), b: rose v2 (random_forest)"
    rows = {line.split()[0]: line.split()[1:] for line in out[2:]}
    assert rows["balanced_accuracy"] == ["0.800", "0.850", "+0.050"]
    assert rows["log_loss"] == ["0.500", "0.400", "-0.100"]
    assert "recall" in rows


def test_compare_json(ini, two, capsys):
    first, second = two
    assert models.main([ini, "compare", str(first), str(second), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert (comparison["a"]["id"], comparison["b"]["id"]) == (first, second)
    by_name = {row["name"]: row for row in comparison["metrics"]}
    assert by_name["balanced_accuracy"]["delta"] == pytest.approx(0.05)


def test_compare_an_unknown_version(ini, two, capsys):
    assert models.main([ini, "compare", "1", "999"]) == 2
    assert capsys.readouterr().err == "error: no model version 999\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["activate", "9" * 20],
        ["activate", "9" * 5000],
        ["activate", "0"],
        ["activate", "-3"],
        ["activate", "2147483648"],
        ["compare", "9" * 20, "1"],
        ["compare", "1", "9" * 20],
    ],
)
def test_an_id_no_model_can_have_is_a_usage_error(ini, app, two, db, argv, capsys):
    before = count(db, ModelActivation)

    with pytest.raises(SystemExit) as excinfo:
        models.main([ini, *argv])

    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "is not a model id (a whole number from 1 to 2147483647)" in err
    assert len(err) < 1000
    assert count(db, ModelActivation) == before
    assert events(db) == []


def test_an_abbreviated_option_is_a_usage_error(ini, two, capsys):
    # A typo must not pick another option: --js is not taken for --json.
    with pytest.raises(SystemExit) as excinfo:
        models.main([ini, "list", "--js"])

    assert excinfo.value.code == 2
    assert "unrecognized arguments: --js" in capsys.readouterr().err


def test_the_largest_model_id_is_looked_up(ini, two, capsys):
    assert models.main([ini, "activate", "2147483647"]) == 2
    assert capsys.readouterr().err == "error: no model version 2147483647\n"
