"""OpenAPI paths and schemas of the model routes (/models/…).

Registered in stethoscope.apidocs.openapi.FEATURE_DOCUMENTS. The rollback
body is described by the pydantic model that validates it; the metrics are
the trainer's and are described loosely, since an older version may lack
any of them.
"""

from typing import Any

from ..apidocs.legacy import (
    FORBIDDEN,
    IDENTIFIER,
    STAFF,
    TIMESTAMP,
    UNAUTHORIZED,
    ref,
    response,
)
from .views import MAX_MODEL_ID, RollbackIn

REF = "#/components/schemas/{model}"
_INVALID = {"$ref": "#/components/responses/Invalid"}
_UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}
_ERROR = {"$ref": "#/components/responses/Error"}
_NOT_FOUND = response("No model version with this id.", "Error")
_REFUSED = response(
    "Refused, nothing changed: the artifact cannot be loaded (missing, "
    "changed since it was written, made by another scikit-learn), the "
    "version is active already, or there is nothing to roll back to. The "
    "message says which; the active model stays active.",
    "Error",
)
_AUTH = "Admins only (a model's figures name the rooms residents were in)."
_MODEL_ID = {
    "name": "model_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_MODEL_ID},
}


def _operation(operation_id, summary, responses, **extra) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": (extra.pop("description", "") + " " + _AUTH).strip(),
        "tags": ["models"],
        "security": STAFF,
        **extra,
        "responses": {
            **responses,
            "401": UNAUTHORIZED,
            "403": FORBIDDEN,
            "503": _UNAVAILABLE,
            "default": _ERROR,
        },
    }


def paths(settings) -> dict[str, Any]:
    return {
        "/models": {
            "get": _operation(
                "listModels",
                "Model versions, newest first, with each site's active model",
                {
                    "200": response("The versions and their sites.", "ModelList"),
                    "400": _INVALID,
                },
                description="Each version with its headline figures and whether "
                "it is its site's active model; each site with its activation "
                "history and what this server process has loaded.",
                parameters=[
                    {
                        "name": "site_id",
                        "in": "query",
                        "description": "Only this site's versions (400 if unknown).",
                        "schema": IDENTIFIER,
                    }
                ],
            )
        },
        "/models/{model_id}": {
            "get": _operation(
                "getModel",
                "One model version with all its metrics",
                {
                    "200": response("The version.", "ModelVersionDetail"),
                    "404": _NOT_FOUND,
                },
                parameters=[_MODEL_ID],
            )
        },
        "/models/{model_id}/activate": {
            "post": _operation(
                "activateModel",
                "Make this version its site's active model",
                {
                    "200": response("The activation.", "ModelActivationResult"),
                    "404": _NOT_FOUND,
                    "409": _REFUSED,
                },
                description="The artifact is loaded and verified first; if it "
                "cannot be, the answer is 409 and the previous model stays "
                "active. Recorded in the audit log. No body.",
                parameters=[_MODEL_ID],
            )
        },
        "/models/rollback": {
            "post": _operation(
                "rollbackModel",
                "Go back to the site's previously active model",
                {
                    "200": response("The activation.", "ModelActivationResult"),
                    "400": _INVALID,
                    "409": _REFUSED,
                },
                description="Activates again the version that was active before "
                "the current one (a new activation row, action rollback); the "
                "history itself is never changed.",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("RollbackIn")}},
                },
            )
        },
        "/models/compare": {
            "get": _operation(
                "compareModels",
                "Two versions side by side",
                {
                    "200": response(
                        "Both versions and how they differ.", "ModelComparison"
                    ),
                    "400": _INVALID,
                },
                parameters=[
                    {
                        "name": name,
                        "in": "query",
                        "required": True,
                        "description": "A model version id (400 if unknown).",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                    for name in ("a", "b")
                ],
            )
        },
    }


def _model(model) -> dict:
    schema = model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)
    return schema


def schemas(settings) -> dict[str, Any]:
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    share = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    version = {
        "type": "object",
        "required": [
            "id",
            "site_id",
            "version",
            "algorithm",
            "directory",
            "active",
            "sha256",
            "sklearn_version",
            "n_readings",
            "n_runs",
            "data_start",
            "data_end",
            "created_at",
            "created_by",
            "metrics",
        ],
        "properties": {
            "id": {"type": "integer"},
            "site_id": IDENTIFIER,
            "version": {
                "type": "integer",
                "description": "1, 2, 3, … within the site.",
            },
            "algorithm": {"type": "string"},
            "directory": {
                "type": "string",
                "description": "The artifact's directory in the model store.",
            },
            "active": {
                "type": "boolean",
                "description": "The site's newest activation names this version.",
            },
            "sha256": {"type": "string"},
            "sklearn_version": {"type": "string"},
            "n_readings": {"type": "integer"},
            "n_runs": {"type": "integer"},
            "data_start": nullable_time,
            "data_end": nullable_time,
            "created_at": TIMESTAMP,
            "created_by": {"type": "string"},
            "metrics": ref("ModelMetricsSummary"),
        },
    }
    return {
        "RollbackIn": _model(RollbackIn),
        "ModelMetricsSummary": {
            "type": "object",
            "description": "The headline figures (any may be missing) and the "
            "number of warnings.",
            "properties": {
                "accuracy": share,
                "balanced_accuracy": share,
                "log_loss": {"type": ["number", "null"]},
                "smoothed": {
                    "type": "object",
                    "properties": {"accuracy": share, "balanced_accuracy": share},
                },
                "selected_by": {"type": "string"},
                "training_seconds": {"type": ["number", "null"]},
                "warnings": {"type": "integer", "minimum": 0},
            },
        },
        "ModelMetrics": {
            "type": "object",
            "description": "Everything the trainer reported, cross-validated and "
            "grouped by training run; any key may be missing.",
            "properties": {
                "accuracy": share,
                "balanced_accuracy": share,
                "log_loss": {"type": ["number", "null"]},
                "smoothed": {"type": "object"},
                "per_room": {
                    "type": "object",
                    "description": "room id → precision, recall, f1, support.",
                    "additionalProperties": {"type": "object"},
                },
                "confusion": {
                    "type": "object",
                    "description": "matrix[i][j]: readings in rooms[i] placed in "
                    "rooms[j].",
                    "properties": {
                        "rooms": {"type": "array", "items": {"type": "string"}},
                        "matrix": {
                            "type": "array",
                            "items": {"type": "array", "items": {"type": "number"}},
                        },
                    },
                },
                "calibration": {"type": "object"},
                "candidates": {
                    "type": "object",
                    "description": "algorithm → its cross-validated figures.",
                    "additionalProperties": {"type": "object"},
                },
                "cv": {"type": "object"},
                "selected_by": {"type": "string"},
                "training_seconds": {"type": ["number", "null"]},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ModelVersion": version,
        "ModelVersionRecord": {
            **version,
            "description": "A version as stored, with all its metrics.",
            "required": [key for key in version["required"] if key != "active"],
            "properties": {
                **{k: v for k, v in version["properties"].items() if k != "active"},
                "metrics": ref("ModelMetrics"),
            },
        },
        "ModelVersionDetail": {
            "allOf": [
                ref("ModelVersionRecord"),
                {
                    "type": "object",
                    "required": ["active"],
                    "properties": {"active": version["properties"]["active"]},
                },
            ]
        },
        "ModelActivation": {
            "type": "object",
            "required": [
                "id",
                "site_id",
                "model_version_id",
                "version",
                "action",
                "activated_at",
                "activated_by",
            ],
            "properties": {
                "id": {"type": "integer"},
                "site_id": IDENTIFIER,
                "model_version_id": {"type": "integer"},
                "version": {"type": ["integer", "null"]},
                "action": {"enum": ["activate", "rollback"]},
                "activated_at": TIMESTAMP,
                "activated_by": {"type": "string"},
            },
        },
        "ModelServing": {
            "type": ["object", "null"],
            "description": "What this server process has loaded for the site "
            "(each process loads a newly activated model itself); null when "
            "nothing.",
            "properties": {
                "version": {"type": ["integer", "null"]},
                "version_id": {"type": ["integer", "null"]},
                "algorithm": {"type": ["string", "null"]},
                "loaded_at": nullable_time,
                "error": {"type": ["string", "null"]},
            },
        },
        "ModelList": {
            "type": "object",
            "required": ["versions", "sites"],
            "properties": {
                "versions": {"type": "array", "items": ref("ModelVersion")},
                "sites": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "site_id",
                            "active_version_id",
                            "serving",
                            "activations",
                        ],
                        "properties": {
                            "site_id": IDENTIFIER,
                            "active_version_id": {"type": ["integer", "null"]},
                            "serving": ref("ModelServing"),
                            "activations": {
                                "type": "array",
                                "description": "Newest first, at most 20.",
                                "items": ref("ModelActivation"),
                            },
                        },
                    },
                },
            },
        },
        "ModelActivationResult": {
            "type": "object",
            "required": ["activation", "version"],
            "properties": {
                "activation": ref("ModelActivation"),
                "version": ref("ModelVersion"),
            },
        },
        "ModelComparison": {
            "type": "object",
            "required": ["a", "b", "same_site", "metrics", "per_room_recall"],
            "properties": {
                "a": ref("ModelVersionRecord"),
                "b": ref("ModelVersionRecord"),
                "same_site": {"type": "boolean"},
                "metrics": {
                    "type": "array",
                    "description": "The headline figures both or either have; "
                    "delta is b − a (null when either lacks it).",
                    "items": {
                        "type": "object",
                        "required": ["name", "a", "b", "delta", "better"],
                        "properties": {
                            "name": {"type": "string"},
                            "a": {"type": ["number", "null"]},
                            "b": {"type": ["number", "null"]},
                            "delta": {"type": ["number", "null"]},
                            "better": {"enum": ["higher", "lower"]},
                        },
                    },
                },
                "per_room_recall": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["room", "a", "b", "delta"],
                        "properties": {
                            "room": {"type": "string"},
                            "a": {"type": ["number", "null"]},
                            "b": {"type": ["number", "null"]},
                            "delta": {"type": ["number", "null"]},
                        },
                    },
                },
            },
        },
    }
