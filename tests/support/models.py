"""Real, tiny model versions for tests: a fitted forest in the real store.

``register_model`` trains a small RandomForestClassifier on a handful of
synthetic readings (each room has its own loudest beacon), wraps it in a
RoomModel, and registers it through ModelService, so the row names a whole
artifact that loads and verifies like one made by stethoscope-train. The
metrics are the trainer's shape, with numbers chosen by the test.
"""

import datetime
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier
from sqlalchemy.orm import Session

from stethoscope.learning.artifacts import MODEL_FILE, ModelStore
from stethoscope.learning.features import build_vocabulary, feature_matrix
from stethoscope.learning.hmm import Motion
from stethoscope.learning.models import ModelVersion
from stethoscope.learning.predictor import RoomModel
from stethoscope.learning.services import ModelService
from stethoscope.learning.trainer import TrainingResult
from stethoscope.registry.models import Room, Site

DATA_START = datetime.datetime(2026, 11, 20, 9, 0, tzinfo=datetime.UTC)
DATA_END = datetime.datetime(2026, 11, 27, 17, 30, tzinfo=datetime.UTC)


def add_site(engine, site_id: str, rooms: list[str], *, timezone: str = "UTC") -> None:
    """A site with rooms ``rooms`` (named after their ids, capitalised)."""
    with Session(engine) as session, session.begin():
        session.add(Site(id=site_id, name=site_id.title(), timezone=timezone))
        session.flush()
        session.add_all(
            Room(id=room, site_id=site_id, name=room.title()) for room in rooms
        )


def training_readings(rooms: list[str]) -> tuple[list[dict], list[str]]:
    """Readings where room ``r``'s beacon ``b-r`` is loudest, and their rooms."""
    readings, labels = [], []
    for room in rooms:
        for step in range(6):
            reading = {f"b-{room}": -50 - step}
            for other in rooms:
                if other != room:
                    reading[f"b-{other}"] = -80 - step
            readings.append(reading)
            labels.append(room)
    return readings, labels


def room_model(rooms: list[str], algorithm: str = "forest") -> RoomModel:
    """A fitted RoomModel over ``rooms`` (two or more room ids)."""
    readings, labels = training_readings(rooms)
    vocabulary = build_vocabulary(readings)
    estimator = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)
    estimator.fit(feature_matrix(readings, vocabulary, "relative"), labels)
    return RoomModel(
        estimator,
        algorithm=algorithm,
        vocabulary=vocabulary,
        feature_set="relative",
        rooms=rooms,
        class_prior=[1 / len(rooms)] * len(rooms),
        motion=Motion.default(len(rooms)),
    )


def metrics(rooms: list[str], *, accuracy: float = 0.93, **extra) -> dict:
    """Metrics in the trainer's shape: a diagonal-heavy confusion matrix."""
    n = len(rooms)
    matrix = [[40 if i == j else 2 + i for j in range(n)] for i in range(n)]
    return {
        "accuracy": accuracy,
        "balanced_accuracy": accuracy - 0.08,
        "log_loss": 0.31,
        "smoothed": {"accuracy": accuracy + 0.03, "balanced_accuracy": accuracy},
        "per_room": {
            room: {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": sum(row)}
            for room, row in zip(rooms, matrix, strict=True)
        },
        "confusion": {"rooms": list(rooms), "matrix": matrix},
        "calibration": {
            "ece": 0.03,
            "bins": [
                {"confidence": 0.55, "accuracy": 0.5, "count": 10},
                {"confidence": 0.95, "accuracy": 0.97, "count": 90},
            ],
        },
        "candidates": {
            "forest": {
                "balanced_log_loss": 0.35,
                "balanced_accuracy": accuracy - 0.08,
                "accuracy": accuracy,
                "seconds": 1.5,
            },
            "knn": {
                "balanced_log_loss": 0.52,
                "balanced_accuracy": 0.7,
                "accuracy": 0.8,
                "seconds": 0.4,
            },
        },
        "cv": {
            "scheme": "StratifiedGroupKFold",
            "folds": 5,
            "groups": "training run",
        },
        "selected_by": "balanced log loss",
        "training_seconds": 12.3,
        **extra,
    }


def register_model(
    engine,
    model_dir: str | Path,
    site_id: str,
    rooms: list[str],
    *,
    accuracy: float = 0.93,
    warnings: list[str] | None = None,
    created_by: str = "trainer",
) -> int:
    """Register a real model version of ``site_id`` (committed); its id."""
    result = TrainingResult(
        model=room_model(rooms),
        algorithm="forest",
        metrics=metrics(rooms, accuracy=accuracy),
        warnings=list(warnings or []),
        n_readings=6 * len(rooms),
        run_ids=list(range(1, 2 * len(rooms) + 1)),
        data_start=DATA_START,
        data_end=DATA_END,
    )
    with Session(engine) as session, session.begin():
        version = ModelService(session, ModelStore(model_dir)).register(
            site_id, result, created_by=created_by
        )
        return version.id


def corrupt_model(engine, model_dir: str | Path, version_id: int) -> Path:
    """Change a byte of the version's model file, as bit rot or a hand would."""
    with Session(engine) as session:
        directory = session.get(ModelVersion, version_id).directory
    path = ModelStore(model_dir).path(directory) / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    # The store leaves its files read-only (and its directories too).
    path.parent.chmod(0o755)
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return path
