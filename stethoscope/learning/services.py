"""Model versions: registering, activating, rolling back; the active models.

``ModelService`` works in the caller's transaction (a request's, or a
console script's) and records what it changes in the audit log there.
``ActiveModels`` is the other side: one per process, it serves each site's
active model and notices, with one cheap query every few seconds, when
another process (a console script, another waitress process) activated a
different one.
"""

import datetime
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..audit.services import no_audit
from ..db import Database, advisory_lock, utcnow
from ..errors import Conflict, NotFound
from ..registry.models import Site
from .artifacts import ArtifactError, ModelStore, jsonable
from .models import ModelActivation, ModelVersion
from .predictor import RoomModel
from .schemas import ModelComparison, ModelVersionRecord
from .trainer import TrainingResult

log = logging.getLogger(__name__)

# The first key of the two-key advisory lock taken while numbering a site's
# versions (see stethoscope.labels.services for the training runs' "TR").
ADVISORY_LOCK_CLASS = 0x4D56  # "MV"

# Activations listed per site, newest first.
HISTORY_ROWS = 20

# is_not_worse: how much worse a candidate may look and still count as "not
# worse". Cross-validated figures of the same data move by about this much
# between two fits of the same algorithm (forests are random), so a
# stricter rule would refuse equal models at random.
BALANCED_ACCURACY_TOLERANCE = 0.005  # absolute: half a point
LOG_LOSS_TOLERANCE = 0.02  # relative: 2 %

# What compare() puts side by side, and which way is better.
HEADLINE_METRICS = (
    ("accuracy", ("accuracy",), "higher"),
    ("balanced_accuracy", ("balanced_accuracy",), "higher"),
    ("log_loss", ("log_loss",), "lower"),
    ("smoothed.accuracy", ("smoothed", "accuracy"), "higher"),
    ("smoothed.balanced_accuracy", ("smoothed", "balanced_accuracy"), "higher"),
)


class ModelRefused(Conflict):
    """409: an activation, rollback or registration that cannot be done (the
    message, for people, says why); nothing changed."""


class ModelNotFound(NotFound):
    """No model version has this id."""

    def __init__(self, version_id: int):
        super().__init__(f"no model version {version_id}")
        self.version_id = version_id


def _metric(metrics: dict | None, path: tuple[str, ...]) -> float | None:
    value = metrics or {}
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def label(version: ModelVersion) -> str:
    """How people name a version: "model 3 of rose-cottage"."""
    return f"model {version.version} of {version.site_id}"


class ModelService:
    """Model versions of the sites, and which one is active."""

    def __init__(
        self,
        session: Session,
        store: ModelStore,
        audit: Callable | None = None,
        active_models: "ActiveModels | None" = None,
    ):
        self.session = session
        self.store = store
        self.audit = audit or no_audit
        self.active_models = active_models

    # Reading

    def versions(self, site_id: str | None = None) -> list[ModelVersion]:
        """Every version (of ``site_id``), newest first."""
        query = select(ModelVersion).order_by(ModelVersion.id.desc())
        if site_id is not None:
            query = query.where(ModelVersion.site_id == site_id)
        return list(self.session.scalars(query))

    def get(self, version_id: int) -> ModelVersion | None:
        """The version with this id, or None."""
        return self.session.get(ModelVersion, version_id)

    def require(self, version_id: int) -> ModelVersion:
        """The version with this id; ModelNotFound when there is none."""
        version = self.get(version_id)
        if version is None:
            raise ModelNotFound(version_id)
        return version

    def active(self, site_id: str) -> ModelVersion | None:
        """The site's active version: that of its newest activation."""
        activation = self._current_activation(site_id)
        return activation.model_version if activation is not None else None

    def activations(
        self, site_id: str, limit: int = HISTORY_ROWS
    ) -> list[ModelActivation]:
        """The site's activations and rollbacks, newest first."""
        return list(
            self.session.scalars(
                select(ModelActivation)
                .where(ModelActivation.site_id == site_id)
                .order_by(ModelActivation.id.desc())
                .limit(limit)
            )
        )

    def serving(self) -> dict[str, dict]:
        """Per site, what this process serves (ActiveModels.status()); empty
        when nothing is loaded, or without ActiveModels (a console script)."""
        return self.active_models.status() if self.active_models else {}

    def sites_with_models(self) -> list[str]:
        """Ids of the sites that have at least one version, sorted."""
        return list(
            self.session.scalars(
                select(ModelVersion.site_id).distinct().order_by(ModelVersion.site_id)
            )
        )

    def _current_activation(self, site_id: str) -> ModelActivation | None:
        return self.session.scalar(
            select(ModelActivation)
            .where(ModelActivation.site_id == site_id)
            .order_by(ModelActivation.id.desc())
            .limit(1)
        )

    # Changing

    def register(
        self, site_id: str, result: TrainingResult, *, created_by: str
    ) -> ModelVersion:
        """Store ``result`` as the site's next version (not activated).

        The artifact is written first and the row inserted last, so that a
        row always names a whole artifact; a failure in between leaves an
        unreferenced directory, never a row without one. Raises ModelRefused
        for an unknown site and when the store cannot write the artifact.
        """
        if self.session.get(Site, site_id) is None:
            raise ModelRefused(f"no site {site_id!r}")
        self._lock_site(site_id)
        number = (
            self.session.scalar(
                select(func.max(ModelVersion.version)).where(
                    ModelVersion.site_id == site_id
                )
            )
            or 0
        ) + 1
        metrics = jsonable(result.metrics)
        # The row has no column of its own for the warnings of training; the
        # models page shows them with the figures.
        metrics.setdefault("warnings", jsonable(result.warnings))
        metadata = {
            "algorithm": result.algorithm,
            "run_ids": list(result.run_ids),
            "n_readings": result.n_readings,
            "data_start": result.data_start,
            "data_end": result.data_end,
            "metrics": metrics,
            "warnings": result.warnings,
            "created_by": created_by,
        }
        try:
            artifact = self.store.write(
                result.model, site_id=site_id, version=number, metadata=metadata
            )
        except ArtifactError as exc:
            raise ModelRefused(
                f"cannot store model {number} of {site_id}: {exc}"
            ) from None
        version = ModelVersion(
            site_id=site_id,
            version=number,
            algorithm=result.algorithm,
            directory=artifact.directory,
            sha256=artifact.sha256,
            sklearn_version=artifact.manifest["versions"]["scikit-learn"],
            n_readings=result.n_readings,
            n_runs=result.n_runs,
            data_start=result.data_start,
            data_end=result.data_end,
            metrics=metrics,
            created_by=created_by,
        )
        self.session.add(version)
        self.session.flush()
        self.audit(
            "model.train",
            target=f"{site_id} v{number}",
            details={
                "model_version_id": version.id,
                "algorithm": result.algorithm,
                "directory": artifact.directory,
                "n_readings": result.n_readings,
                "n_runs": result.n_runs,
                "balanced_accuracy": _metric(metrics, ("balanced_accuracy",)),
            },
        )
        return version

    def activate(self, version_id: int, *, actor: str) -> ModelActivation:
        """Make ``version_id`` its site's active model.

        The artifact is loaded and verified first: one that is missing,
        changed, made by another scikit-learn or holding untrusted types is
        refused (ModelRefused, saying why) and the active model stays.
        Activating the active version is refused too.
        """
        version = self.require(version_id)
        current = self.active(version.site_id)
        if current is not None and current.id == version.id:
            raise ModelRefused(f"{label(version)} is already the active model")
        try:
            self.store.load(version.directory, version.sha256)
        except ArtifactError as exc:
            raise ModelRefused(
                f"{label(version)} cannot be activated: {exc}. The active model "
                f"is unchanged."
            ) from None
        return self._append(version, current, "activate", actor)

    def rollback(self, site_id: str, *, actor: str) -> ModelActivation:
        """Re-activate the version that was active before the current one.

        Walks the site's activations back to the first version that differs
        from the current one and still loads (versions that do not load are
        passed over). ModelRefused when there is none.
        """
        current = self._current_activation(site_id)
        if current is None:
            raise ModelRefused(f"site {site_id} has no active model to roll back")
        history = self.session.scalars(
            select(ModelActivation)
            .where(
                ModelActivation.site_id == site_id,
                ModelActivation.id < current.id,
            )
            .order_by(ModelActivation.id.desc())
        ).all()
        passed_over: list[str] = []
        tried: set[int] = {current.model_version_id}
        for activation in history:
            if activation.model_version_id in tried:
                continue
            tried.add(activation.model_version_id)
            version = activation.model_version
            try:
                self.store.load(version.directory, version.sha256)
            except ArtifactError as exc:
                passed_over.append(f"{label(version)}: {exc}")
                continue
            return self._append(version, current.model_version, "rollback", actor)
        message = (
            f"site {site_id} has no earlier model to roll back to; "
            f"{label(current.model_version)} stays active"
        )
        if passed_over:
            message += ". Earlier models that cannot be loaded: " + "; ".join(
                passed_over
            )
        raise ModelRefused(message)

    def _append(
        self,
        version: ModelVersion,
        previous: ModelVersion | None,
        action: str,
        actor: str,
    ) -> ModelActivation:
        activation = ModelActivation(
            site_id=version.site_id,
            model_version=version,
            model_version_id=version.id,
            action=action,
            activated_by=actor[:64],
        )
        self.session.add(activation)
        self.session.flush()
        self.audit(
            f"model.{action}",
            target=f"{version.site_id} v{version.version}",
            details={
                "model_version_id": version.id,
                "previous_model_version_id": previous.id if previous else None,
                "previous_version": previous.version if previous else None,
            },
        )
        return activation

    def _lock_site(self, site_id: str) -> None:
        # Two trainers of one site at once would pick the same number; the
        # unique constraint would then refuse the second after its artifact
        # was written.
        advisory_lock(self.session, ADVISORY_LOCK_CLASS, [site_id])

    # Comparing

    def compare(self, a_id: int, b_id: int) -> ModelComparison:
        """Two versions' headline figures side by side; ``delta`` is b − a.

        ``metrics`` lists accuracy, balanced accuracy, log loss and, when the
        trainer recorded them, the smoothed (HMM) accuracies, each with
        ``better`` ("higher" or "lower"); ``per_room_recall`` lists every
        room of either. A figure one version lacks is None, as is its delta.
        """
        a, b = self.require(a_id), self.require(b_id)
        metrics = []
        for name, path, better in HEADLINE_METRICS:
            value_a, value_b = _metric(a.metrics, path), _metric(b.metrics, path)
            if value_a is None and value_b is None:
                continue
            metrics.append(
                {
                    "name": name,
                    "a": value_a,
                    "b": value_b,
                    "delta": _delta(value_a, value_b),
                    "better": better,
                }
            )
        rooms_a = (a.metrics or {}).get("per_room") or {}
        rooms_b = (b.metrics or {}).get("per_room") or {}
        per_room = []
        for room in sorted(set(rooms_a) | set(rooms_b)):
            recall_a = _metric(rooms_a.get(room), ("recall",))
            recall_b = _metric(rooms_b.get(room), ("recall",))
            per_room.append(
                {
                    "room": room,
                    "a": recall_a,
                    "b": recall_b,
                    "delta": _delta(recall_a, recall_b),
                }
            )
        return ModelComparison(
            a=ModelVersionRecord.of(a),
            b=ModelVersionRecord.of(b),
            same_site=a.site_id == b.site_id,
            metrics=metrics,
            per_room_recall=per_room,
        )

    @staticmethod
    def is_not_worse(candidate_metrics: dict, active: ModelVersion) -> bool:
        """Whether a new model may replace ``active`` (stethoscope-train --activate).

        The rule: the candidate's balanced accuracy is at most
        BALANCED_ACCURACY_TOLERANCE (absolute) below the active version's,
        and its log loss at most LOG_LOSS_TOLERANCE (relative) above. A
        figure the active version lacks is not compared; a figure the
        active version has and the candidate lacks makes it not proven, so
        False. Both sets of figures should come from the same grouped
        cross-validation, or the comparison says little.
        """
        active_ba = _metric(active.metrics, ("balanced_accuracy",))
        if active_ba is not None:
            candidate_ba = _metric(candidate_metrics, ("balanced_accuracy",))
            if candidate_ba is None:
                return False
            if candidate_ba < active_ba - BALANCED_ACCURACY_TOLERANCE:
                return False
        active_loss = _metric(active.metrics, ("log_loss",))
        if active_loss is not None:
            candidate_loss = _metric(candidate_metrics, ("log_loss",))
            if candidate_loss is None:
                return False
            if candidate_loss > active_loss * (1 + LOG_LOSS_TOLERANCE) + 1e-12:
                return False
        return True


@dataclass(frozen=True)
class LoadedModel:
    """A site's active model as this process serves it."""

    version_id: int
    version: int
    site_id: str
    algorithm: str
    model: RoomModel
    loaded_at: datetime.datetime


@dataclass(frozen=True)
class _Wanted:
    version_id: int
    version: int
    site_id: str
    algorithm: str
    directory: str
    sha256: str


class ActiveModels:
    """Each site's active model, loaded once per process and kept current.

    At most every ``refresh_seconds`` (0: on every call) a ``get`` runs one
    cheap query, the newest activation id; only when it changed are the
    sites' active versions read and the changed ones loaded. A version that
    fails to load is logged once and reported by ``status()``, and the
    previous model goes on being served: a bad artifact must not stop
    locating. It is tried again every ``retry_seconds`` (the model store
    on a network share may have been away for a moment), not on every check:
    a file that never loads (a scikit-learn upgrade) is read and hashed
    again only that often. Loading happens under a lock, but serving never waits for it
    once something is loaded: the models are swapped in as a new dict.
    """

    def __init__(
        self,
        database: Database,
        store: ModelStore,
        *,
        refresh_seconds: float = 2,
        retry_seconds: float = 60,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.database = database
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self._retry_at = math.inf
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._errors: dict[str, tuple[int, str]] = {}
        self._logged: set[int] = set()
        self._marker: int | None = None
        self._checked = False
        self._checked_at = -math.inf
        self._database_error_logged = False

    def get(self, site_id: str) -> LoadedModel | None:
        """The site's active model, or None when it has none (or none loads)."""
        self._maybe_refresh()
        return self._models.get(site_id)

    def status(self) -> dict[str, dict]:
        """Per site: the version served, when it was loaded, and the error
        of the active version when it could not be loaded (else None)."""
        self._maybe_refresh()
        models, errors = self._models, dict(self._errors)
        out = {}
        for site_id in sorted(set(models) | set(errors)):
            loaded = models.get(site_id)
            error = errors.get(site_id)
            out[site_id] = {
                "version": loaded.version if loaded else None,
                "version_id": loaded.version_id if loaded else None,
                "algorithm": loaded.algorithm if loaded else None,
                "loaded_at": loaded.loaded_at if loaded else None,
                "error": error[1] if error else None,
            }
        return out

    def refresh(self) -> None:
        """Check now (waiting for a refresh in progress), whatever the period."""
        with self._lock:
            self._refresh()

    def _maybe_refresh(self) -> None:
        if self.monotonic() - self._checked_at < self.refresh_seconds:
            return
        # Until the first check is done a caller has nothing to serve, so it
        # waits; afterwards it serves what is loaded while another thread
        # refreshes.
        if not self._lock.acquire(blocking=not self._checked):
            return
        try:
            if self.monotonic() - self._checked_at >= self.refresh_seconds:
                self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        self._checked_at = self.monotonic()
        try:
            with self.database.session(write=False) as session:
                marker = session.scalar(select(func.max(ModelActivation.id)))
                retry_due = self._errors and self.monotonic() >= self._retry_at
                if marker == self._marker and self._checked and not retry_due:
                    return
                wanted = self._wanted(session)
        except SQLAlchemyError as exc:
            # Serve what is loaded; say so once until the database is back.
            if not self._database_error_logged:
                log.error("cannot check for newly activated models: %s", exc)
                self._database_error_logged = True
            return
        self._database_error_logged = False
        self._marker = marker
        models = dict(self._models)
        for site_id, want in wanted.items():
            loaded = models.get(site_id)
            if loaded is not None and loaded.version_id == want.version_id:
                self._errors.pop(site_id, None)
                continue
            try:
                model = self.store.load(want.directory, want.sha256)
            except ArtifactError as exc:
                message = f"model {want.version} of {site_id}: {exc}"
                self._errors[site_id] = (want.version_id, message)
                self._retry_at = self.monotonic() + self.retry_seconds
                if want.version_id not in self._logged:
                    self._logged.add(want.version_id)
                    log.error(
                        "cannot load the active %s; still serving %s",
                        message,
                        f"model {loaded.version}" if loaded else "no model",
                    )
                continue
            self._errors.pop(site_id, None)
            models[site_id] = LoadedModel(
                version_id=want.version_id,
                version=want.version,
                site_id=site_id,
                algorithm=want.algorithm,
                model=model,
                loaded_at=utcnow(),
            )
            log.info("serving model %s of %s", want.version, site_id)
        self._models = models
        # Only now: a caller that finds the first check done does not wait,
        # so it must find the models of that check.
        self._checked = True

    @staticmethod
    def _wanted(session: Session) -> dict[str, _Wanted]:
        newest = (
            select(func.max(ModelActivation.id).label("id"))
            .group_by(ModelActivation.site_id)
            .subquery()
        )
        rows = session.execute(
            select(
                ModelVersion.id,
                ModelVersion.version,
                ModelVersion.site_id,
                ModelVersion.algorithm,
                ModelVersion.directory,
                ModelVersion.sha256,
            )
            .join(ModelActivation, ModelActivation.model_version_id == ModelVersion.id)
            .join(newest, newest.c.id == ModelActivation.id)
        )
        return {row.site_id: _Wanted(*row) for row in rows}
