"""Request and response models of the training-run API (docs/api/training_runs.md).

Runs are answered in UTC; the admin pages show the same runs in the site's
time zone. Each response model has an ``of`` that builds it from what
LabelService returns, so the JSON has one definition, used by the views and
described by the generated OpenAPI document.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from ..schemas import (
    MAX_ROW_ID,
    Body,
    Identifier,
    Out,
    Query,
    QueryInt,
    RowId,
    Timestamp,
)

# Runs started (or ended) in one request: a room full of badges, not more.
MAX_BADGES = 50
# Runs named in one bulk_stats query.
MAX_STATS_RUNS = 200
PAGE_LIMIT_MAX = 500
PAGE_LIMIT_DEFAULT = 100

RunStatus = Literal["open", "completed", "cancelled"]
PathRunId = QueryInt(1, MAX_ROW_ID)


class RunPath(Query):
    run_id: PathRunId


# ---- bodies --------------------------------------------------------------------


class BulkStartIn(Body):
    """Start one run per badge, all in one room at one moment."""

    badge_ids: list[Identifier] = Field(min_length=1, max_length=MAX_BADGES)
    room_id: Identifier


def _no_default(schema: dict) -> None:
    # Absent is not null: "default: null" would say a null is taken.
    schema.pop("default", None)


class BulkEndIn(Body):
    """End open runs: by badge (its open run) or by run id; exactly one of
    the two."""

    # The document says "exactly one" as JSON Schema can: oneOf the two
    # required members. The validator below is what refuses, naming body.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["badge_ids"]}, {"required": ["run_ids"]}]
        }
    )

    badge_ids: list[Identifier] = Field(
        None,
        min_length=1,
        max_length=MAX_BADGES,
        description="The badges whose open runs end.",
        json_schema_extra=_no_default,
    )
    run_ids: list[RowId] = Field(
        None,
        min_length=1,
        max_length=MAX_BADGES,
        description="The open runs that end.",
        json_schema_extra=_no_default,
    )

    @model_validator(mode="after")
    def _one_of(self):
        if (self.badge_ids is None) == (self.run_ids is None):
            raise ValueError("give either badge_ids or run_ids")
        return self


class RelabelIn(Body):
    room_id: Identifier


# ---- queries -------------------------------------------------------------------


# A run id of the query: what the pattern below allows. Leading zeros and
# spaces are taken too (the document is the stricter of the two).
RUN_ID_DIGITS = 10


def _run_id_list(value: Any) -> Any:
    # "1,2,3" (the repeated form, run_ids=1&run_ids=2, is read the same way);
    # blank is left out, like no parameter: every open run.
    text = ",".join(value) if isinstance(value, list) else value
    if not isinstance(text, str) or not text.strip():
        return None
    parts = [part.strip() for part in text.split(",", MAX_STATS_RUNS)]
    if len(parts) > MAX_STATS_RUNS or not all(
        part.isascii() and part.isdigit() and len(part.lstrip("0")) <= RUN_ID_DIGITS
        for part in parts
    ):
        raise ValueError(f"must be up to {MAX_STATS_RUNS} run ids separated by commas")
    # 0, or an id beyond the column, is an id no run has: unknown, so left
    # out like any other unknown id.
    return [int(part) for part in parts if 1 <= int(part) <= MAX_ROW_ID]


RunIdList = Annotated[
    list[int] | None,
    BeforeValidator(_run_id_list),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^[0-9]{{1,{RUN_ID_DIGITS}}}"
            f"(,[0-9]{{1,{RUN_ID_DIGITS}}}){{0,{MAX_STATS_RUNS - 1}}}$",
            "description": f"Up to {MAX_STATS_RUNS} run ids separated by commas; "
            "unknown ids are left out. Without: every open run.",
        }
    ),
]


class StatsQuery(Query):
    run_ids: RunIdList = Field(None, json_schema_extra=_no_default)


class RunsQuery(Query):
    status: RunStatus | None = None
    room_id: Identifier | None = None
    badge_id: Identifier | None = None
    limit: QueryInt(1, PAGE_LIMIT_MAX) = PAGE_LIMIT_DEFAULT
    offset: QueryInt(0, MAX_ROW_ID) = 0


class CoverageQuery(Query):
    site_id: Identifier | None = None


class HistoryQuery(Query):
    """The history page's filter form ("" is its "completed and cancelled")."""

    status: Literal["", "completed", "cancelled"] = ""
    page: QueryInt(1, 100_000) = 1


# ---- responses -----------------------------------------------------------------


class TrainingRun(Out):
    """The run."""

    id: int
    badge_id: str
    room_id: str
    started_at: Timestamp
    ended_at: Timestamp | None = Field(description="null while open.")
    cancelled_at: Timestamp | None
    status: RunStatus
    created_by: str
    source: Literal["live", "import"]

    @classmethod
    def of(cls, run) -> "TrainingRun":
        """From a TrainingRun row: its attributes of the same names."""
        return cls.model_validate(run, from_attributes=True)


class TrainingRunStats(TrainingRun):
    """The run with its statistics."""

    readings: int = Field(
        description="Readings of the badge observed in [started_at, ended_at or now)."
    )
    beacons: list[str]
    beacon_count: int
    last_reading_at: Timestamp | None
    seconds_since_last: float | None
    silent: bool = Field(description="An open run with no reading for over 30 s.")
    warnings: list[str]

    @classmethod
    def of(cls, stats) -> "TrainingRunStats":
        """From LabelService's RunStats."""
        since = stats.seconds_since_last
        return cls(
            **dict(TrainingRun.of(stats.run)),
            readings=stats.readings,
            beacons=stats.beacons,
            beacon_count=len(stats.beacons),
            last_reading_at=stats.last_reading_at,
            seconds_since_last=None if since is None else round(since, 1),
            silent=stats.silent,
            warnings=stats.warnings,
        )


class TrainingRunList(Out):
    """The runs started."""

    runs: list[TrainingRun]


class TrainingRunPage(Out):
    """A page of runs, newest first, and how many match in all."""

    runs: list[TrainingRun]
    total: int
    limit: int
    offset: int


class TrainingRunStatsList(Out):
    """Statistics per run."""

    runs: list[TrainingRunStats]


class LiveStats(TrainingRunStatsList):
    """Statistics per run, and after how long without a reading a run is silent."""

    silent_after_s: float


class DeletedTrainingRun(Out):
    """What was deleted."""

    deleted: TrainingRun


class RoomCoverage(Out):
    room_id: str
    room_name: str
    site_id: str
    runs: int
    readings: int
    badges: int
    warnings: list[str]

    @classmethod
    def of(cls, coverage) -> "RoomCoverage":
        """From LabelService's RoomCoverage."""
        return cls(
            room_id=coverage.room.id,
            room_name=coverage.room.name,
            site_id=coverage.room.site_id,
            runs=coverage.runs,
            readings=coverage.readings,
            badges=coverage.badges,
            warnings=coverage.warnings,
        )


class Thresholds(Out):
    min_runs: int
    min_readings: int
    imbalance: int


class Coverage(Out):
    """Coverage per room, and the thresholds of its warnings."""

    rooms: list[RoomCoverage]
    thresholds: Thresholds
