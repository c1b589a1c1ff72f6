"""OpenAPI paths and schemas of the training-run routes (/training_runs/…).

Registered in stethoscope.apidocs.openapi.FEATURE_DOCUMENTS. Request bodies
are described by the pydantic models that validate them.
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
from .views import MAX_STATS_RUNS, PAGE_LIMIT_MAX, BulkEndIn, BulkStartIn, RelabelIn

REF = "#/components/schemas/{model}"
_INVALID = {"$ref": "#/components/responses/Invalid"}
_UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}
_ERROR = {"$ref": "#/components/responses/Error"}
_NOT_FOUND = response("No training run with this id.", "Error")
_CONFLICT = response(
    "Refused by the run rules (an open run, an overlap, a run not open); "
    "badge_id and run_id say which.",
    "RunConflict",
)
_AUTH = "Admins only (reads included: training data says where residents were)."
_RUN_ID = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _body(schema: str) -> dict:
    return {
        "required": True,
        "content": {"application/json": {"schema": ref(schema)}},
    }


def _operation(operation_id, summary, responses, **extra) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": extra.pop("description", "") + " " + _AUTH,
        "tags": ["training"],
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
        "/training_runs": {
            "get": _operation(
                "listTrainingRuns",
                "Training runs, newest first",
                {
                    "200": response("A page of runs.", "TrainingRunPage"),
                    "400": _INVALID,
                },
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": ["open", "completed", "cancelled"]},
                    },
                    {"name": "room_id", "in": "query", "schema": IDENTIFIER},
                    {"name": "badge_id", "in": "query", "schema": IDENTIFIER},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": PAGE_LIMIT_MAX,
                            "default": 100,
                        },
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                ],
            )
        },
        "/training_runs/bulk_start": {
            "post": _operation(
                "bulkStartTrainingRuns",
                "Start a run for each badge, in one room, at one moment",
                {
                    "201": response("The runs started.", "TrainingRunList"),
                    "400": _INVALID,
                    "409": _CONFLICT,
                },
                description="All or nothing: a badge with an open run, or whose "
                "runs the new one would overlap, refuses the whole request.",
                requestBody=_body("BulkStartIn"),
            )
        },
        "/training_runs/bulk_end": {
            "post": _operation(
                "bulkEndTrainingRuns",
                "End open runs, by badge or by run id, at one moment",
                {
                    "200": response(
                        "The runs ended, with their final statistics; a run "
                        "with no readings has a warning.",
                        "TrainingRunStatsList",
                    ),
                    "400": _INVALID,
                    "404": _NOT_FOUND,
                    "409": _CONFLICT,
                },
                requestBody=_body("BulkEndIn"),
            )
        },
        "/training_runs/bulk_stats": {
            "get": _operation(
                "trainingRunStats",
                "Live statistics of runs (the open runs when none are named)",
                {
                    "200": response("Statistics per run.", "TrainingRunStatsList"),
                    "400": _INVALID,
                },
                parameters=[
                    {
                        "name": "run_ids",
                        "in": "query",
                        "description": f"Up to {MAX_STATS_RUNS} run ids separated "
                        "by commas; unknown ids are left out.",
                        "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
                    }
                ],
            )
        },
        "/training_runs/coverage": {
            "get": _operation(
                "trainingCoverage",
                "Per room: completed runs, readings, badges and warnings",
                {"200": response("Coverage per room.", "Coverage"), "400": _INVALID},
                parameters=[{"name": "site_id", "in": "query", "schema": IDENTIFIER}],
            )
        },
        "/training_runs/{run_id}": {
            "get": _operation(
                "getTrainingRun",
                "One run with its statistics",
                {"200": response("The run.", "TrainingRunStats"), "404": _NOT_FOUND},
                parameters=[_RUN_ID],
            ),
            "delete": _operation(
                "deleteTrainingRun",
                "Delete a run; its readings stay, unlabelled",
                {
                    "200": response("What was deleted.", "DeletedTrainingRun"),
                    "404": _NOT_FOUND,
                },
                parameters=[_RUN_ID],
            ),
        },
        "/training_runs/{run_id}/cancel": {
            "post": _operation(
                "cancelTrainingRun",
                "Cancel a run: kept, but never training data",
                {
                    "200": response("The run.", "TrainingRun"),
                    "404": _NOT_FOUND,
                    "409": _CONFLICT,
                },
                parameters=[_RUN_ID],
            )
        },
        "/training_runs/{run_id}/relabel": {
            "post": _operation(
                "relabelTrainingRun",
                "Say the run's badge was in another room",
                {
                    "200": response("The run.", "TrainingRun"),
                    "400": _INVALID,
                    "404": _NOT_FOUND,
                },
                parameters=[_RUN_ID],
                requestBody=_body("RelabelIn"),
            )
        },
    }


def _model(model) -> dict:
    schema = model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)
    return schema


def schemas(settings) -> dict[str, Any]:
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    run = {
        "type": "object",
        "required": [
            "id",
            "badge_id",
            "room_id",
            "started_at",
            "ended_at",
            "cancelled_at",
            "status",
            "created_by",
            "source",
        ],
        "properties": {
            "id": {"type": "integer"},
            "badge_id": IDENTIFIER,
            "room_id": IDENTIFIER,
            "started_at": TIMESTAMP,
            "ended_at": {**nullable_time, "description": "null while open."},
            "cancelled_at": nullable_time,
            "status": {"enum": ["open", "completed", "cancelled"]},
            "created_by": {"type": "string"},
            "source": {"enum": ["live", "import"]},
        },
    }
    return {
        "BulkStartIn": _model(BulkStartIn),
        "BulkEndIn": _model(BulkEndIn),
        "RelabelIn": _model(RelabelIn),
        "TrainingRun": run,
        "TrainingRunStats": {
            "allOf": [
                ref("TrainingRun"),
                {
                    "type": "object",
                    "properties": {
                        "readings": {
                            "type": "integer",
                            "description": "Readings of the badge observed in "
                            "[started_at, ended_at or now).",
                        },
                        "beacons": {"type": "array", "items": IDENTIFIER},
                        "beacon_count": {"type": "integer"},
                        "last_reading_at": nullable_time,
                        "seconds_since_last": {"type": ["number", "null"]},
                        "silent": {
                            "type": "boolean",
                            "description": "An open run with no reading for over 30 s.",
                        },
                        "warnings": {"type": "array", "items": {"type": "string"}},
                    },
                },
            ]
        },
        "TrainingRunList": {
            "type": "object",
            "required": ["runs"],
            "properties": {"runs": {"type": "array", "items": ref("TrainingRun")}},
        },
        "TrainingRunPage": {
            "type": "object",
            "required": ["runs", "total", "limit", "offset"],
            "properties": {
                "runs": {"type": "array", "items": ref("TrainingRun")},
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
            },
        },
        "TrainingRunStatsList": {
            "type": "object",
            "required": ["runs"],
            "properties": {
                "runs": {"type": "array", "items": ref("TrainingRunStats")},
                "silent_after_s": {"type": "number"},
            },
        },
        "DeletedTrainingRun": {
            "type": "object",
            "required": ["deleted"],
            "properties": {"deleted": ref("TrainingRun")},
        },
        "RunConflict": {
            "allOf": [
                ref("Error"),
                {
                    "type": "object",
                    "properties": {
                        "badge_id": {"type": ["string", "null"]},
                        "run_id": {"type": ["integer", "null"]},
                    },
                },
            ]
        },
        "Coverage": {
            "type": "object",
            "required": ["rooms", "thresholds"],
            "properties": {
                "rooms": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "room_id": IDENTIFIER,
                            "room_name": {"type": "string"},
                            "site_id": IDENTIFIER,
                            "runs": {"type": "integer"},
                            "readings": {"type": "integer"},
                            "badges": {"type": "integer"},
                            "warnings": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
                "thresholds": {
                    "type": "object",
                    "properties": {
                        "min_runs": {"type": "integer"},
                        "min_readings": {"type": "integer"},
                        "imbalance": {"type": "integer"},
                    },
                },
            },
        },
    }
