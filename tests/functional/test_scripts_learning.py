"""stethoscope-train and stethoscope-evaluate, on simulated houses.

Train runs on SQLite and PostgreSQL from a house set up by
stethoscope-simulate and a labelled day it wrote; evaluate needs no
database at all.
"""

import datetime
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stethoscope.learning.models import ModelActivation, ModelVersion
from stethoscope.scripts import evaluate as evaluate_script
from stethoscope.scripts import labelled_import
from stethoscope.scripts import simulate as simulate_script
from stethoscope.scripts import train as train_script

EVALUATE_KEYS = {
    "algorithm",
    "raw",
    "smoothed",
    "history",
    "room_changes_per_hour",
    "unknown",
    "per_room",
    "n_train",
    "n_test",
    "dead_beacons",
}


def simulated_csv(path, *, hours: float, seed: int, start: str, extra=()) -> str:
    assert (
        simulate_script.main(
            [
                "csv",
                str(path),
                "--days",
                str(hours / 24),
                "--seed",
                str(seed),
                "--start",
                start,
                "--badges",
                "3",
                *extra,
            ]
        )
        == 0
    )
    return str(path)


@pytest.fixture
def labelled_day(tmp_path, capsys):
    path = simulated_csv(
        tmp_path / "day.csv", hours=2, seed=1, start="2026-01-05T08:00:00Z"
    )
    capsys.readouterr()
    return path


def evaluate_json(capsys, *args) -> dict:
    assert evaluate_script.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_prints_the_documented_json(tmp_path, labelled_day, capsys):
    test_file = simulated_csv(
        tmp_path / "next.csv",
        hours=1,
        seed=2,
        start="2026-01-06T08:00:00Z",
        extra=("--unlabelled-share", "0.3"),
    )
    capsys.readouterr()

    result = evaluate_json(
        capsys, "--train", labelled_day, "--test", test_file, "--algorithm", "logistic"
    )

    assert set(result) >= EVALUATE_KEYS
    assert result["algorithm"] == "logistic"
    for kind in ("raw", "smoothed", "history"):
        assert set(result[kind]) == {"accuracy", "balanced_accuracy"}
        assert 0 <= result[kind]["balanced_accuracy"] <= 1
        assert result["room_changes_per_hour"][kind] >= 0
    assert result["room_changes_per_hour"]["truth"] > 0
    assert 0 <= result["unknown"]["share"] <= 1
    with open(test_file) as handle:
        rows = sum(1 for _ in handle) - 1
    assert result["n_test"] == rows
    # Unlabelled rows are predicted, not scored.
    assert 0 < result["n_test_labelled"] < result["n_test"]
    supports = sum(room["support"] for room in result["per_room"].values())
    assert supports == result["n_test_labelled"]


def test_evaluate_prints_a_summary_table(labelled_day, capsys):
    assert (
        evaluate_script.main(
            ["--train", labelled_day, "--test", labelled_day, "--algorithm", "knn"]
        )
        == 0
    )

    out = capsys.readouterr().out
    assert "algorithm: knn" in out
    assert "smoothed" in out and "balanced accuracy" in out
    assert "history" in out and "room changes/h" in out


def test_evaluate_with_a_dead_beacon_says_which(labelled_day, capsys):
    with open(labelled_day) as handle:
        beacon = handle.readline().strip().split(",")[3]

    result = evaluate_json(
        capsys,
        "--train",
        labelled_day,
        "--test",
        labelled_day,
        "--algorithm",
        "logistic",
        "--dead-beacon",
        beacon,
    )

    assert result["dead_beacons"] == [beacon]
    assert result["feature_set"] == "masked"
    assert beacon not in result["imposter_beacons"]


def test_evaluate_refuses_a_file_with_bad_rows_naming_the_lines(
    tmp_path, labelled_day, capsys
):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "timestamp,badge_id,room,a\n2026-01-01T00:00:00Z,b1,hall,-50\n"
        "yesterday,b1,hall,-50\n2026-01-01T00:00:02Z,b1,hall,loud\n"
    )

    assert evaluate_script.main(["--train", labelled_day, "--test", str(bad)]) == 2

    err = capsys.readouterr().err
    assert "2 bad row(s)" in err
    assert "line 3: timestamp" in err
    assert "line 4: a:" in err


BEACONS = ("bcn-kitchen", "bcn-lounge-tv")
LOUDEST = {"demo-kitchen": "bcn-kitchen", "demo-lounge": "bcn-lounge-tv"}
START = datetime.datetime(2026, 1, 5, 8, 0, tzinfo=datetime.UTC)


def stretches_csv(path, stretches, *, heard: bool = True) -> str:
    """A labelled CSV of ``(badge, room, minute)`` stretches: 20 readings 5 s
    apart from that minute, the room's beacon loud and the other faint; rows
    in time order."""
    rows = []
    for badge, room, minute in stretches:
        for step in range(20):
            moment = START + datetime.timedelta(minutes=minute, seconds=5 * step)
            cells = [
                str((-50 if beacon == LOUDEST[room] else -80) - step % 3)
                if heard
                else ""
                for beacon in BEACONS
            ]
            stamp = moment.isoformat().replace("+00:00", "Z")
            rows.append((moment, badge, f"{stamp},{badge},{room}," + ",".join(cells)))
    lines = ["timestamp,badge_id,room," + ",".join(BEACONS)]
    lines += [line for _, _, line in sorted(rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


ONE_RUN_PER_ROOM = [
    ("demo-badge-001", "demo-kitchen", 0),
    ("demo-badge-001", "demo-lounge", 10),
]


def test_evaluate_explains_data_that_cannot_be_cross_validated(tmp_path, capsys):
    data = stretches_csv(tmp_path / "first.csv", ONE_RUN_PER_ROOM)

    assert evaluate_script.main(["--train", data, "--test", data]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: cross-validation cannot judge any room")
    assert "Record at least 2 runs in each room" in err


def test_evaluate_explains_training_data_where_nothing_was_heard(tmp_path, capsys):
    silent = stretches_csv(
        tmp_path / "silent.csv",
        [*ONE_RUN_PER_ROOM, *((b, r, m + 30) for b, r, m in ONE_RUN_PER_ROOM)],
        heard=False,
    )

    assert evaluate_script.main(["--train", silent, "--test", silent]) == 2

    assert "error: no beacon was heard" in capsys.readouterr().err


def test_evaluate_refuses_a_missing_file(labelled_day, tmp_path, capsys):
    missing = str(tmp_path / "nope.csv")

    assert evaluate_script.main(["--train", labelled_day, "--test", missing]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.fixture
def trained_house(ini, labelled_day, capsys):
    """The demo house set up in the ini's database, with a labelled day."""
    assert simulate_script.main(["setup", ini]) == 0
    assert labelled_import.main([ini, labelled_day, "--site", "demo"]) == 0
    capsys.readouterr()
    return ini


def train_json(capsys, *args) -> dict:
    assert train_script.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_train_stores_a_version_and_activates_it_on_a_new_site(
    trained_house, engine, capsys
):
    outcome = train_json(capsys, trained_house, "--algorithm", "logistic", "--activate")

    assert outcome["site_id"] == "demo"
    assert outcome["version"] == 1
    assert outcome["activated"] is True
    assert outcome["metrics"]["cv"]["groups"].startswith("training session")
    # Three badges walking about on their own: now and then two share a
    # room for most of a stay, and are held out together.
    assert (
        outcome["n_runs"] - 3
        <= outcome["metrics"]["cv"]["sessions"]
        <= outcome["n_runs"]
    )
    # Eight rooms: far better than chance, whatever the few runs of a room.
    assert outcome["metrics"]["balanced_accuracy"] > 0.5
    with Session(engine) as session:
        version = session.scalars(select(ModelVersion)).one()
        assert version.algorithm == "logistic"
        assert version.n_runs == outcome["n_runs"] > 5
        activation = session.scalars(select(ModelActivation)).one()
        assert activation.model_version_id == version.id
        assert activation.activated_by == "console:matron"


def test_train_without_activate_leaves_the_active_model(trained_house, engine, capsys):
    first = train_json(capsys, trained_house, "--algorithm", "logistic", "--activate")

    assert train_script.main([trained_house, "--algorithm", "logistic"]) == 0

    out = capsys.readouterr().out
    assert "model version 2" in out
    assert "not activated: " in out
    assert "candidate" in out and "smoothed recall" in out
    with Session(engine) as session:
        active = session.scalars(
            select(ModelActivation).order_by(ModelActivation.id.desc())
        ).first()
        assert active.model_version_id == first["model_version_id"]


def test_activate_compares_with_the_active_algorithm_on_the_same_folds(
    trained_house, engine, capsys
):
    train_json(capsys, trained_house, "--algorithm", "logistic", "--activate")

    outcome = train_json(capsys, trained_house, "--algorithm", "knn", "--activate")

    candidates = outcome["metrics"]["candidates"]
    assert set(candidates) == {"knn", "logistic"}
    knn, logistic = candidates["knn"], candidates["logistic"]
    not_worse = (
        knn["balanced_accuracy"] >= logistic["balanced_accuracy"] - 0.005
        and knn["log_loss"] <= logistic["log_loss"] * 1.02
    )
    assert outcome["activated"] is not_worse
    with Session(engine) as session:
        activations = session.scalar(select(func.count()).select_from(ModelActivation))
    assert activations == (2 if not_worse else 1)


def test_train_names_the_sites_when_there_are_several(trained_house, capsys):
    assert simulate_script.main(["setup", trained_house, "--house", "generated"]) == 0
    capsys.readouterr()

    assert train_script.main([trained_house]) == 2
    assert "several sites: choose one with --site" in capsys.readouterr().err


def test_train_explains_a_site_without_training_data(ini, capsys):
    assert simulate_script.main(["setup", ini]) == 0
    capsys.readouterr()

    assert train_script.main([ini, "--site", "demo"]) == 2
    assert "no readings in completed training runs" in capsys.readouterr().err
    assert train_script.main([ini, "--site", "nowhere"]) == 2
    assert "no site 'nowhere'" in capsys.readouterr().err


@pytest.fixture
def demo_house(ini, capsys):
    assert simulate_script.main(["setup", ini]) == 0
    capsys.readouterr()
    return ini


def imported(ini, path) -> None:
    assert labelled_import.main([ini, path, "--site", "demo"]) == 0


def test_train_explains_a_first_training_with_one_run_per_room(
    demo_house, tmp_path, engine, capsys
):
    imported(demo_house, stretches_csv(tmp_path / "first.csv", ONE_RUN_PER_ROOM))
    capsys.readouterr()

    assert train_script.main([demo_house, "--site", "demo"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: cross-validation cannot judge any room")
    assert "Record at least 2 runs in each room" in err
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0


def test_train_holds_out_badges_carried_together_as_one_session(
    demo_house, tmp_path, capsys
):
    # Two badges carried together through each room, twice: eight runs,
    # four sessions.
    together = [
        (badge, room, minute)
        for room, minute in (
            ("demo-kitchen", 0),
            ("demo-lounge", 10),
            ("demo-kitchen", 60),
            ("demo-lounge", 70),
        )
        for badge in ("demo-badge-001", "demo-badge-002")
    ]
    imported(demo_house, stretches_csv(tmp_path / "together.csv", together))
    capsys.readouterr()

    outcome = train_json(capsys, demo_house, "--site", "demo", "--algorithm", "knn")

    assert outcome["n_runs"] == 8
    cv = outcome["metrics"]["cv"]
    assert (cv["scheme"], cv["folds"], cv["sessions"], cv["runs"]) == (
        "LeaveOneGroupOut",
        4,
        4,
        8,
    )
    assert train_script.main([demo_house, "--site", "demo", "--algorithm", "knn"]) == 0
    assert "4 folds grouped by training session" in capsys.readouterr().out
