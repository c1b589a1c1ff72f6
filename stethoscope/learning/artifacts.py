"""The model store: write-once artifact directories, verified when loaded.

Pickle runs code while it loads, so a model file that someone could change
could run anything in the server. A model is kept with skops instead, whose
loader builds only the types it is told to trust; we trust an explicit list
of the scikit-learn and numpy types our trainer produces, never whatever the
file asks for. A directory of the store holds:

* ``model.skops``: the estimator (skops.io);
* ``manifest.json``: the format, the library versions it was made with, what
  the estimator needs to be used (``RoomModel.to_manifest()``), what it was
  trained on and how well it did, and the sha256 of ``model.skops``.

A directory is written under a temporary name, synced, and renamed into
place, so a reader sees a whole artifact or none; it is never overwritten,
and its files are made read-only. The database row naming it is inserted
only after the rename (``ModelService.register``).

Loading refuses, with a message meant for an operator, an artifact that is
incomplete, changed since it was written, made by another scikit-learn
(whose estimators may unpickle into wrong numbers without any error), or
that holds a type outside the allowlist.
"""

import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops
import skops.io

from ..db import utcnow
from .predictor import RoomModel

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
FORMAT = "stethoscope-model/1"
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
READ_ONLY_DIRECTORY = READ_ONLY | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH

# What skops may build besides its own default trusted types (plain
# scikit-learn estimators, numpy arrays, builtins). Each entry is a type the
# trainer's candidates contain once fitted: the trees of forests and extra
# trees, the predictors of histogram gradient boosting, the search trees and
# distance metrics of k-nearest neighbours, the calibrators of
# CalibratedClassifierCV. A new kind of estimator in the trainer needs its
# types added here, after checking that they hold data and not code.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.EuclideanDistance32",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance32",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance32",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance32",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
    }
)


class ArtifactError(Exception):
    """An artifact cannot be written or used; the message is for an operator."""


@dataclass
class StoredArtifact:
    """A complete artifact: its directory (relative to the store's root), the
    sha256 of its model file, and its manifest."""

    directory: str
    sha256: str
    manifest: dict


def library_versions() -> dict[str, str]:
    """The versions a model file depends on, as this process has them."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skops": skops.__version__,
    }


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy numbers and arrays become Python ones,
    datetimes ISO text, and NaN or infinity None (JSONB and our renderer
    refuse them)."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ArtifactError(f"cannot keep a {type(value).__name__} in a manifest")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_name(site_id: str) -> str:
    """A directory name for ``site_id``: the id itself when it is safe, else
    its safe characters plus a hash (so that two ids never share one)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", site_id)
    if cleaned == site_id:
        return cleaned
    digest = hashlib.sha256(site_id.encode()).hexdigest()[:8]
    return f"{cleaned[:48]}-{digest}"


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_writable(directory: Path) -> None:
    """Undo the read-only modes, so that a half-written directory can go."""
    for path in [directory, *directory.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


class ModelStore:
    """Write-once model directories under ``root`` (``stethoscope.model_dir``).

    A directory is ``<site>/v<version>-<UTC timestamp>``; the database keeps
    it relative to ``root``, so the store can move as a whole.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
    ):
        self.root = Path(root)
        self.clock = clock

    def write(
        self, model: RoomModel, *, site_id: str, version: int, metadata: dict
    ) -> StoredArtifact:
        """Write ``model`` as a new directory and return what was written.

        ``metadata`` (JSON-able: training-run ids, data window, metrics,
        warnings) is kept in the manifest. Raises ArtifactError when the
        directory exists already, when the estimator holds a type that could
        not be loaded again, or when the disk refuses.
        """
        created_at = self.clock().astimezone(datetime.UTC)
        relative = Path(
            safe_name(site_id), f"v{version}-{created_at.strftime('%Y%m%dT%H%M%SZ')}"
        )
        final = self.root / relative
        if final.exists():
            raise ArtifactError(
                f"model directory {final} exists already; artifacts are never "
                f"overwritten"
            )
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # A sibling of the final directory, so that the rename stays on
            # one filesystem and is atomic.
            staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=final.parent))
        except OSError as exc:
            raise ArtifactError(f"cannot write to the model store: {exc}") from None
        try:
            artifact = self._fill(
                staging, model, site_id, version, created_at, metadata
            )
            self._rename(staging, final)
            _fsync_path(final.parent)
        except OSError as exc:
            self._discard(staging)
            raise ArtifactError(f"cannot write to the model store: {exc}") from None
        except BaseException:
            self._discard(staging)
            raise
        return StoredArtifact(str(relative), artifact.sha256, artifact.manifest)

    def _fill(self, staging, model, site_id, version, created_at, metadata):
        model_path = staging / MODEL_FILE
        try:
            skops.io.dump(model.estimator, model_path)
        except Exception as exc:  # skops raises whatever the object's parts do
            raise ArtifactError(
                f"cannot save the estimator with skops: {exc}"
            ) from None
        data = model_path.read_bytes()
        # Refused now rather than when someone tries to activate it.
        refused = self._refused_types(data)
        if refused:
            raise ArtifactError(
                f"the estimator holds types the model store does not trust: "
                f"{', '.join(refused)}; add them to TRUSTED_TYPES in "
                f"stethoscope/learning/artifacts.py only if they hold data, not code"
            )
        digest = sha256_of(data)
        manifest = {
            "format": FORMAT,
            "versions": library_versions(),
            "site_id": site_id,
            "version": version,
            "created_at": created_at.isoformat(),
            "model": jsonable(model.to_manifest()),
            "training": jsonable(metadata),
            "files": {MODEL_FILE: digest},
        }
        manifest_path = staging / MANIFEST_FILE
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for path in (model_path, manifest_path):
            _fsync_path(path)
            path.chmod(READ_ONLY)
        staging.chmod(READ_ONLY_DIRECTORY)
        _fsync_path(staging)
        return StoredArtifact("", digest, manifest)

    @staticmethod
    def _discard(staging: Path) -> None:
        if staging.exists():
            _make_writable(staging)
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _rename(staging: Path, final: Path) -> None:
        # os.rename replaces an empty directory that appeared meanwhile on
        # POSIX; checking once more narrows that to nothing that matters,
        # since the database refuses a second row for the same directory.
        if final.exists():
            raise ArtifactError(
                f"model directory {final} exists already; artifacts are never "
                f"overwritten"
            )
        try:
            os.rename(staging, final)
        except OSError as exc:
            raise ArtifactError(
                f"cannot put the model in place at {final}: {exc}"
            ) from None

    def path(self, directory: str) -> Path:
        """The absolute path of ``directory``; it must lie inside the store."""
        root = self.root.resolve()
        path = (root / directory).resolve()
        if path == root or root not in path.parents:
            raise ArtifactError(f"model directory {directory!r} is outside the store")
        return path

    def read_manifest(self, directory: str) -> dict:
        """The manifest of ``directory``, checked to be of a format we know."""
        path = self.path(directory)
        if not path.is_dir():
            raise ArtifactError(
                f"model directory {path} is missing (was the model store moved? "
                f"stethoscope.model_dir is {self.root})"
            )
        manifest_path = path / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            raise ArtifactError(f"{manifest_path} is missing") from None
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {manifest_path}: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise ArtifactError(
                f"{manifest_path} is of an unknown format ({found!r}; this "
                f"version of Stethoscope reads {FORMAT!r})"
            )
        return manifest

    def load(self, directory: str, sha256: str) -> RoomModel:
        """The model of ``directory``, verified; ArtifactError says why not.

        ``sha256`` is what the database recorded for the model file. Nothing
        is unpickled: skops builds only its default types and TRUSTED_TYPES.
        """
        manifest = self.read_manifest(directory)
        path = self.path(directory) / MODEL_FILE
        try:
            # Read once: the bytes checked are the bytes loaded.
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"model file {path} is missing") from None
        except OSError as exc:
            raise ArtifactError(f"cannot read model file {path}: {exc}") from None
        digest = sha256_of(data)
        recorded = (manifest.get("files") or {}).get(MODEL_FILE)
        if digest != sha256 or digest != recorded:
            raise ArtifactError(
                f"model file {path} has been changed since it was written "
                f"(its sha256 is {digest}, the database recorded {sha256} and "
                f"the manifest {recorded}); retrain with stethoscope-train, or "
                f"restore the directory from a backup"
            )
        trained_with = (manifest.get("versions") or {}).get("scikit-learn")
        if trained_with != sklearn.__version__:
            raise ArtifactError(
                f"the model in {directory} was trained with scikit-learn "
                f"{trained_with} and this process has scikit-learn "
                f"{sklearn.__version__}; an estimator is only safe to use with "
                f"the version that made it: retrain with stethoscope-train"
            )
        refused = self._refused_types(data)
        if refused:
            raise ArtifactError(
                f"model file {path} holds types that are not on the allowlist "
                f"and will not be loaded: {', '.join(refused)}"
            )
        try:
            estimator = skops.io.loads(data, trusted=sorted(TRUSTED_TYPES))
            return RoomModel.from_manifest(estimator, manifest["model"])
        except Exception as exc:  # a damaged file or manifest fails in many ways
            raise ArtifactError(
                f"cannot load the model in {directory}: {type(exc).__name__}: {exc}"
            ) from None

    @staticmethod
    def _refused_types(data: bytes) -> list[str]:
        try:
            untrusted = skops.io.get_untrusted_types(data=data)
        except Exception as exc:  # not a skops file at all
            raise ArtifactError(f"not a readable skops file: {exc}") from None
        return sorted(set(untrusted) - TRUSTED_TYPES)
