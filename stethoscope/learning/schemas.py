"""Request and response models of the model API (docs/api/models.md).

The metrics are the trainer's and are passed on as they are, since a
version written by an older trainer (or by hand) may lack any of them; a
version in a list carries only the headline figures and a count of
warnings. Each response model has an ``of`` that builds it from the rows
ModelService returns: the views, the compare of the service and the
console scripts all answer with these.
"""

from typing import Any, Literal

from pydantic import Field

from ..schemas import MAX_ROW_ID, Body, Identifier, Out, Query, QueryInt, Timestamp

ModelId = QueryInt(1, MAX_ROW_ID)
# The figures of a version's list entry; the rest only on its own route.
SUMMARY_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "log_loss",
    "smoothed",
    "selected_by",
    "training_seconds",
)


def metrics_of(version) -> dict:
    """The version's metrics; {} when they are not an object."""
    # The trainer writes the metrics; a version written by an older trainer
    # (or by hand) may lack any of them, and the pages must still render.
    return version.metrics if isinstance(version.metrics, dict) else {}


def warnings_of(version) -> list[str]:
    warnings = metrics_of(version).get("warnings")
    return [str(w) for w in warnings] if isinstance(warnings, list) else []


def metrics_summary(version) -> dict:
    """The headline figures of a version and how many warnings it has."""
    metrics = metrics_of(version)
    summary = {key: metrics[key] for key in SUMMARY_KEYS if key in metrics}
    if isinstance(summary.get("smoothed"), dict):
        # The smoothed report repeats the per-room tables: headline only.
        summary["smoothed"] = {
            key: summary["smoothed"][key]
            for key in ("accuracy", "balanced_accuracy")
            if key in summary["smoothed"]
        }
    summary["warnings"] = len(warnings_of(version))
    return summary


def _attributes(row, model: type[Out], but: tuple[str, ...] = ()) -> dict:
    """The row's attributes named as ``model``'s fields (``but`` these)."""
    return {name: getattr(row, name) for name in model.model_fields if name not in but}


class ModelPath(Query):
    model_id: ModelId


class ModelsQuery(Query):
    site_id: Identifier | None = Field(
        None, description="Only this site's versions (400 if unknown)."
    )


class CompareQuery(Query):
    a: ModelId = Field(description="A model version id (400 if unknown).")
    b: ModelId = Field(description="A model version id (400 if unknown).")


class RollbackIn(Body):
    """Roll a site back to the model that was active before its current one."""

    site_id: Identifier


# ---- responses -----------------------------------------------------------------


class ModelVersionRecord(Out):
    """A version as stored, with all its metrics."""

    id: int
    site_id: str
    version: int = Field(description="1, 2, 3, … within the site.")
    algorithm: str
    directory: str = Field(description="The artifact's directory in the model store.")
    sha256: str
    sklearn_version: str
    n_readings: int
    n_runs: int
    data_start: Timestamp | None
    data_end: Timestamp | None
    metrics: dict[str, Any] = Field(
        description="Everything the trainer reported, cross-validated and "
        "grouped by training run (accuracy, balanced_accuracy, log_loss, "
        "smoothed, per_room, confusion, calibration, candidates, cv, "
        "selected_by, training_seconds, warnings); any may be missing."
    )
    created_at: Timestamp
    created_by: str

    @classmethod
    def fields_of(cls, version) -> dict:
        """The row's attributes of the fields' names, its metrics as
        ``metrics_of`` reads them."""
        return {
            **_attributes(version, ModelVersionRecord),
            "metrics": metrics_of(version),
        }

    @classmethod
    def of(cls, version) -> "ModelVersionRecord":
        return cls(**cls.fields_of(version))


class ModelVersion(ModelVersionRecord):
    """The version, and whether it is its site's active model."""

    active: bool = Field(description="The site's newest activation names this version.")

    @classmethod
    def of(cls, version, *, active: bool, full: bool = False) -> "ModelVersion":
        """Its metrics summarised (the headline figures and the number of
        warnings) unless ``full``."""
        fields = cls.fields_of(version)
        if not full:
            fields["metrics"] = metrics_summary(version)
        return cls(**fields, active=active)


class ModelActivation(Out):
    id: int
    site_id: str
    model_version_id: int
    version: int | None
    action: Literal["activate", "rollback"]
    activated_at: Timestamp
    activated_by: str

    @classmethod
    def of(cls, activation) -> "ModelActivation":
        return cls(
            **_attributes(activation, cls, but=("version",)),
            version=activation.model_version.version,
        )


class ModelServing(Out):
    """What this server process has loaded for the site (each process loads
    a newly activated model itself)."""

    version: int | None
    version_id: int | None
    algorithm: str | None
    loaded_at: Timestamp | None
    error: str | None


class SiteModels(Out):
    site_id: str
    active_version_id: int | None
    serving: ModelServing | None = Field(description="null when nothing is loaded.")
    activations: list[ModelActivation] = Field(description="Newest first, at most 20.")


class ModelList(Out):
    """The versions, newest first, and their sites."""

    versions: list[ModelVersion]
    sites: list[SiteModels]


class ActivationResult(Out):
    """The activation, and the version now active."""

    activation: ModelActivation
    version: ModelVersion

    @classmethod
    def of(cls, activation) -> "ActivationResult":
        """From the activation ModelService made (its version is now active)."""
        return cls(
            activation=ModelActivation.of(activation),
            version=ModelVersion.of(activation.model_version, active=True),
        )


class MetricComparison(Out):
    name: str
    a: float | None
    b: float | None
    delta: float | None = Field(description="b − a; null when either lacks it.")
    better: Literal["higher", "lower"]


class RecallComparison(Out):
    room: str
    a: float | None
    b: float | None
    delta: float | None


class ModelComparison(Out):
    """Both versions and how they differ."""

    a: ModelVersionRecord
    b: ModelVersionRecord
    same_site: bool
    metrics: list[MetricComparison] = Field(
        description="The headline figures both or either have."
    )
    per_room_recall: list[RecallComparison]
