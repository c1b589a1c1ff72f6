"""ModelStore: write-once artifacts, and every reason to refuse loading one."""

import datetime
import json
import operator
import os
import stat

import numpy as np
import pytest
import sklearn
import skops.io
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from stethoscope.learning.artifacts import (
    FORMAT,
    MANIFEST_FILE,
    MODEL_FILE,
    ArtifactError,
    ModelStore,
    safe_name,
    sha256_of,
)
from stethoscope.learning.features import build_vocabulary, feature_matrix
from stethoscope.learning.hmm import Motion
from stethoscope.learning.predictor import RoomModel

ROOMS = ("bedroom", "kitchen", "lounge")
NOW = datetime.datetime(2026, 11, 28, 10, 15, tzinfo=datetime.UTC)


def readings(n_per_room=20, seed=0):
    """Synthetic readings: each room's own beacon is heard loudest there."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for room in ROOMS:
        for _ in range(n_per_room):
            reading = {f"b-{room}": int(rng.integers(-62, -50))}
            for other in ROOMS:
                if other != room and rng.random() < 0.7:
                    reading[f"b-{other}"] = int(rng.integers(-90, -75))
            rows.append(reading)
            labels.append(room)
    return rows, np.asarray(labels)


def room_model(estimator=None, seed=0) -> RoomModel:
    """A tiny fitted RoomModel (a 5-tree forest unless told otherwise)."""
    rows, labels = readings(seed=seed)
    vocabulary = build_vocabulary(rows)
    if estimator is None:
        estimator = RandomForestClassifier(n_estimators=5, random_state=seed)
    estimator.fit(feature_matrix(rows, vocabulary, "relative"), labels)
    return RoomModel(
        estimator,
        algorithm=type(estimator).__name__.lower(),
        vocabulary=vocabulary,
        feature_set="relative",
        rooms=ROOMS,
        class_prior=[1 / 3] * 3,
        motion=Motion.default(len(ROOMS)),
    )


def untrusted_model() -> RoomModel:
    """A model whose pipeline holds a function, a type outside the allowlist."""
    return room_model(
        make_pipeline(
            FunctionTransformer(operator.neg),
            StandardScaler(),
            LogisticRegression(max_iter=500),
        )
    )


@pytest.fixture
def store(tmp_path):
    return ModelStore(tmp_path / "models", clock=lambda: NOW)


def write(store, model, version=1, site_id="rose"):
    return store.write(
        model, site_id=site_id, version=version, metadata={"run_ids": [1, 2]}
    )


def make_writable(path):
    path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        lambda: ExtraTreesClassifier(n_estimators=5, random_state=0),
        lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0),
        lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(5)),
        lambda: make_pipeline(
            StandardScaler(), KNeighborsClassifier(5, algorithm="ball_tree")
        ),
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    ],
    ids=["forest", "extra-trees", "hist-gb", "knn", "knn-ball-tree", "logistic"],
)
def test_round_trip_predicts_the_same(store, estimator):
    model = room_model(estimator())
    artifact = write(store, model)
    loaded = store.load(artifact.directory, artifact.sha256)
    rows, _ = readings(seed=1)
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert loaded.rooms == model.rooms
    assert loaded.vocabulary == model.vocabulary
    assert loaded.algorithm == model.algorithm


def test_the_artifact_and_its_manifest(store):
    artifact = write(store, room_model(), version=3)
    assert artifact.directory == "rose/v3-20261128T101500Z"
    path = store.root / artifact.directory
    assert sorted(os.listdir(path)) == [MANIFEST_FILE, MODEL_FILE]
    assert sha256_of((path / MODEL_FILE).read_bytes()) == artifact.sha256
    manifest = store.read_manifest(artifact.directory)
    assert manifest == artifact.manifest
    assert manifest["format"] == FORMAT
    assert manifest["versions"]["scikit-learn"] == sklearn.__version__
    assert set(manifest["versions"]) == {"python", "scikit-learn", "numpy", "skops"}
    assert (manifest["site_id"], manifest["version"]) == ("rose", 3)
    assert manifest["created_at"] == NOW.isoformat()
    assert manifest["model"]["rooms"] == list(ROOMS)
    assert manifest["training"] == {"run_ids": [1, 2]}
    assert manifest["files"] == {MODEL_FILE: artifact.sha256}
    # Nothing of the temporary directory is left behind.
    assert os.listdir(store.root / "rose") == ["v3-20261128T101500Z"]


def test_files_are_read_only(store):
    artifact = write(store, room_model())
    path = store.root / artifact.directory
    for name in (MODEL_FILE, MANIFEST_FILE):
        assert not (path / name).stat().st_mode & 0o222
    assert not path.stat().st_mode & 0o222


def test_a_directory_is_never_overwritten(store):
    first = write(store, room_model())
    with pytest.raises(ArtifactError, match="exists already"):
        write(store, room_model(seed=1))
    path = store.root / first.directory
    assert sha256_of((path / MODEL_FILE).read_bytes()) == first.sha256
    assert os.listdir(store.root / "rose") == [path.name]


def test_an_unsafe_site_id_gets_a_safe_directory(store):
    artifact = write(store, room_model(), site_id="../rose cottage")
    assert "/" not in artifact.directory.split("/", 1)[0]
    assert artifact.directory.startswith(safe_name("../rose cottage") + "/")
    assert (store.root / artifact.directory).is_dir()
    assert safe_name("rose") == "rose" != safe_name("rose/")


def test_a_missing_directory_is_refused(store):
    with pytest.raises(ArtifactError, match="is missing"):
        store.load("rose/v9-20261128T101500Z", "0" * 64)


def test_a_directory_outside_the_store_is_refused(store, tmp_path):
    with pytest.raises(ArtifactError, match="outside the store"):
        store.load("../elsewhere", "0" * 64)


def test_a_missing_model_file_is_refused(store):
    artifact = write(store, room_model())
    path = store.root / artifact.directory
    make_writable(path)
    (path / MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match="model file .* is missing"):
        store.load(artifact.directory, artifact.sha256)


def test_a_missing_manifest_is_refused(store):
    artifact = write(store, room_model())
    path = store.root / artifact.directory
    make_writable(path)
    (path / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        store.load(artifact.directory, artifact.sha256)


def edit_manifest(store, artifact, change):
    path = store.root / artifact.directory / MANIFEST_FILE
    make_writable(path)
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_an_unknown_manifest_format_is_refused(store):
    artifact = write(store, room_model())
    edit_manifest(store, artifact, lambda m: m.update(format="something-else/9"))
    with pytest.raises(ArtifactError, match="unknown format"):
        store.load(artifact.directory, artifact.sha256)


def test_an_unreadable_manifest_is_refused(store):
    artifact = write(store, room_model())
    path = store.root / artifact.directory / MANIFEST_FILE
    make_writable(path)
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match="cannot read"):
        store.load(artifact.directory, artifact.sha256)


def test_a_changed_model_file_is_refused(store):
    artifact = write(store, room_model())
    path = store.root / artifact.directory / MODEL_FILE
    make_writable(path)
    with path.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="has been changed since it was written"):
        store.load(artifact.directory, artifact.sha256)


def test_a_hash_other_than_the_databases_is_refused(store):
    artifact = write(store, room_model())
    with pytest.raises(ArtifactError, match="has been changed since it was written"):
        store.load(artifact.directory, "f" * 64)


def test_another_sklearn_version_is_refused(store):
    artifact = write(store, room_model())
    edit_manifest(
        store, artifact, lambda m: m["versions"].update({"scikit-learn": "0.24.2"})
    )
    with pytest.raises(ArtifactError) as refused:
        store.load(artifact.directory, artifact.sha256)
    message = str(refused.value)
    assert "scikit-learn 0.24.2" in message
    assert f"scikit-learn {sklearn.__version__}" in message
    assert "retrain with stethoscope-train" in message


def test_untrusted_types_are_refused_and_never_loaded(store, monkeypatch):
    artifact = write(store, room_model())
    path = store.root / artifact.directory
    # What an attacker (or a careless trainer) might leave: a file naming a
    # function for skops to look up, outside the allowlist.
    bad = untrusted_model()
    make_writable(path / MODEL_FILE)
    skops.io.dump(bad.estimator, path / MODEL_FILE)
    digest = sha256_of((path / MODEL_FILE).read_bytes())
    edit_manifest(store, artifact, lambda m: m["files"].update({MODEL_FILE: digest}))

    def no_loading(*args, **kwargs):
        raise AssertionError("skops.io.loads was called")

    monkeypatch.setattr(skops.io, "loads", no_loading)
    with pytest.raises(ArtifactError, match="not on the allowlist") as refused:
        store.load(artifact.directory, digest)
    assert "_operator.neg" in str(refused.value)


def test_an_estimator_with_untrusted_types_is_not_written(store):
    bad = untrusted_model()
    with pytest.raises(ArtifactError, match="does not trust: _operator.neg"):
        write(store, bad)
    assert os.listdir(store.root / "rose") == []


def test_a_manifest_can_be_read_without_loading(store):
    artifact = write(store, room_model())
    assert store.read_manifest(artifact.directory)["files"][MODEL_FILE] == (
        artifact.sha256
    )
