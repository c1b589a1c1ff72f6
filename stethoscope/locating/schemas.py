"""Request and response models of the locating API (docs/api/locating.md).

Probabilities travel as short arrays, as in the original API: a room is
``[room_id, probability, room_name]`` (and its prior ``weight`` for Bayes),
highest probability first. Times are ISO 8601 with the site's UTC offset,
so a day's history reads in the house's own clock.
"""

from typing import Annotated, Any, Literal

from annotated_types import Ge
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    WithJsonSchema,
)

from ..schemas import Body, BodyInt, Day, Identifier, Out, Query, QueryInt

Algorithm = Literal["raw", "bayes", "smoothed"]
ReturnValue = Literal["room_id", "room_name"]
# Periods of a history with a grain: a minute, ten minutes, an hour.
GRAINS = (60, 600, 3600)
# The last period of the longest (25-hour) day at the finest grain.
MAX_OFFSET = 25 * 3600


def _grain(value: Any) -> Any:
    if value not in GRAINS:
        raise ValueError(f"must be one of {', '.join(map(str, GRAINS))} (seconds)")
    return value


# The document lists the grains: its bounds alone would call 61 a grain.
GRAIN_SCHEMA = WithJsonSchema({"type": "integer", "enum": list(GRAINS)})
Grain = Annotated[QueryInt(60, 3600), AfterValidator(_grain), GRAIN_SCHEMA]
BodyGrain = Annotated[BodyInt(60, 3600), AfterValidator(_grain), GRAIN_SCHEMA]
# A room's prior weight: a finite number >= 0 (JSON has no NaN; orjson
# refuses it before this).
Weight = Annotated[float, Ge(0), Field(allow_inf_nan=False)]


def _tuple(value: Any) -> Any:
    # A JSON array is a list; the strict body takes a tuple only as one.
    return tuple(value) if isinstance(value, list) else value


Prior = Annotated[tuple[Identifier, Weight], BeforeValidator(_tuple)]
Priors = list[Prior]


def _no_repeats(priors: Priors | None) -> Priors | None:
    seen: set[str] = set()
    for room_id, _weight in priors or ():
        if room_id in seen:
            raise ValueError(f"room {room_id!r} is listed twice")
        seen.add(room_id)
    return priors


PriorList = Annotated[
    Priors,
    AfterValidator(_no_repeats),
    Field(
        description="[[room_id, weight], …]: each room's prior weight (a "
        "number >= 0, not all 0), each room at most once (JSON Schema cannot "
        "say so: a room listed twice is refused, naming priors); rooms not "
        "listed weigh 1, ids the model does not know are ignored.",
        max_length=1000,
    ),
]


class BadgePath(Query):
    badge_id: Identifier


class SitePath(Query):
    site_id: Identifier


class LocationBody(Body):
    priors: PriorList


class HistoryQuery(Query):
    """GET: everything in the query string."""

    date: Day | None = Field(
        None, description="The site's local day, YYYY-MM-DD; default today."
    )
    grain: Grain | None = Field(
        None,
        description="60, 600 or 3600: the most likely room of each period of "
        "that many seconds; absent: every reading.",
    )
    offset: QueryInt(0, MAX_OFFSET) = Field(
        0,
        description="Index of the first period (or reading, without a grain) "
        "of the day to return: a client that has periods 0..n-1 asks for n.",
    )
    algorithm: Algorithm | None = Field(
        None,
        description="raw, bayes or smoothed (past and future readings of the "
        "day); default smoothed, or bayes when priors are posted.",
    )
    return_value: ReturnValue = "room_id"


class HistoryBody(Body):
    """POST: the same options in the body, with the priors."""

    date: Day | None = None
    grain: BodyGrain | None = None
    offset: BodyInt(0, MAX_OFFSET) = 0
    algorithm: Algorithm | None = None
    return_value: ReturnValue = "room_id"
    priors: PriorList | None = None


class StaysQuery(Query):
    date: Day | None = Field(
        None, description="The site's local day, YYYY-MM-DD; default today."
    )


# ---- responses -----------------------------------------------------------------

RoomProbability = tuple[str, float, str]
WeightedProbability = tuple[str, float, str, float]


class LatestReading(Out):
    id: int
    observed_at: str = Field(description="ISO 8601 with the site's offset.")
    gateway: str = Field(description="The gateway that posted it.")
    beacons: dict[str, int]
    imposter_beacons: list[str] = Field(
        description="Beacons heard that the model does not know."
    )
    age_seconds: float


class ModelInfo(Out):
    version_id: int
    version: int
    algorithm: str
    trained_at: str | None
    activated_at: str | None


class Location(Out):
    """Where the badge is now."""

    badge_id: str
    site_id: str
    room_id: str = Field(
        description="The smoothed most likely room (a best guess when unknown)."
    )
    room_name: str
    probability: float
    since: str = Field(
        description="When the badge entered room_id, as far as the window shows."
    )
    unknown: bool
    reason: str | None = Field(description="Why the location is unknown, or null.")
    raw: list[RoomProbability] = Field(
        description="[[room_id, probability, room_name], …], highest first: the "
        "model on the latest reading alone."
    )
    bayes: list[WeightedProbability] | None = Field(
        None,
        description="Only when priors are posted: [[room_id, probability, "
        "room_name, weight], …], raw × weight, normalised, highest first.",
    )
    smoothed: list[RoomProbability] = Field(
        description="The forward filter over the badge's recent readings."
    )
    reading: LatestReading
    model: ModelInfo
    dead_beacons: list[str] = Field(
        description="The model's beacons no badge of the site has heard lately."
    )


class History(RootModel[list[tuple[str, str]]]):
    """[[time, room], …]: per reading, or per period with a grain."""


class Stay(Out):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    room_id: str
    room_name: str
    from_: str = Field(alias="from", description="The stay's first reading.")
    to: str = Field(description="The stay's last reading.")
    readings: int
    confidence: float = Field(description="The mean probability of its room.")


class Stays(RootModel[list[Stay]]):
    """The day's stays, in time order."""


class Occupant(Out):
    badge_id: str
    room_id: str
    room_name: str
    confidence: float
    since: str
    unknown: bool
    reason: str | None
    last_heard: str
    wearer: str | None = Field(
        None, description="Only for callers who may view history (staff)."
    )


class RoomOccupancy(Out):
    room_id: str
    room_name: str
    badges: list[Occupant]


class Unheard(Out):
    badge_id: str
    last_heard: str | None
    wearer: str | None = None


class Occupancy(Out):
    """Who is in which room of the site now."""

    site_id: str
    at: str
    rooms: list[RoomOccupancy] = Field(
        description="Every room of the site, with the badges located in it."
    )
    unknown: list[Occupant] = Field(
        description="Badges heard lately whose room is unknown."
    )
    not_heard: list[Unheard] = Field(
        description="The site's badges not heard in the recent window."
    )
    model: ModelInfo
    dead_beacons: list[str]
