"""The models of /rssi_readings: what gateways post, what they get back.

Gateways in the field send::

    {"badge_id": "1", "pi_id": "2", "beacons": {"a": -30, "b": -35}}

with optional ``badge_strength`` and ``observed_at``. The body is parsed by
orjson, which already refuses NaN/Infinity, lone surrogates, invalid UTF-8
and nesting deeper than 1024; integers beyond 64 bits become floats, which
the integer fields' bounds below refuse. Unknown fields are ignored so that a
gateway sending something new is not cut off.
"""

import datetime
import hashlib
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..endpoints import field_errors, parse_json
from ..errors import FieldError, Invalid
from ..schemas import (
    IDENTIFIER,
    MAX_BIG_ID,
    NOT_HEARD,
    RSSI_MAX,
    BodyInt,
    FieldErrorOut,
    Identifier,
    IsoDateTime,
    Out,
    Query,
    QueryInt,
)

__all__ = [
    "IDENTIFIER",
    "NOT_HEARD",
    "RSSI_MAX",
    "BatchItemIn",
    "BatchResult",
    "ItemResult",
    "Reading",
    "ReadingIn",
    "ReadingsPage",
    "ReadingsPost",
    "ReadingsQuery",
    "fingerprint",
    "parse_json",
    "validate_reading",
]

Rssi = BodyInt(NOT_HEARD, RSSI_MAX)


class ReadingIn(BaseModel):
    """One reading as a gateway posts it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    badge_id: Identifier = Field(description="The badge that was heard.")
    pi_id: Identifier = Field(description="The gateway posting the reading.")
    beacons: dict[Identifier, Rssi] = Field(
        description="RSSI in dBm per beacon id; -128 means not heard and is "
        "dropped. May be empty: the badge heard no beacon.",
        json_schema_extra={
            "propertyNames": {"pattern": "^[!-~]{1,64}$"},
        },
    )
    badge_strength: BodyInt(-128, 127) | None = Field(
        None, description="The badge's signal strength at the gateway, dBm."
    )
    observed_at: IsoDateTime | None = Field(
        None,
        description="When the gateway heard it (ISO-8601; no offset means UTC). "
        "Required in batch uploads.",
    )

    @field_validator("beacons")
    @classmethod
    def _cap_and_drop_not_heard(cls, beacons: dict, info: ValidationInfo) -> dict:
        limit = (info.context or {}).get("max_beacons", 32)
        if len(beacons) > limit:
            raise ValueError(f"at most {limit} beacons")
        return {key: rssi for key, rssi in beacons.items() if rssi != NOT_HEARD}

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, value: datetime.datetime | None) -> datetime.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        try:
            return value.astimezone(datetime.UTC) if value is not None else None
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is a valid text whose UTC time is
            # before year 1. pydantic turns only ValueError into a field
            # error; an OverflowError would be a 500.
            raise ValueError("is out of range once converted to UTC") from None


class BatchItemIn(ReadingIn):
    """One reading of a batch: as ReadingIn, with observed_at."""

    observed_at: IsoDateTime = Field(
        description="When the gateway heard it (ISO-8601; no offset means UTC)."
    )


class ReadingsPost(
    RootModel[ReadingIn | Annotated[list[BatchItemIn], Field(min_length=1)]]
):
    """One reading object, or a JSON array of readings (each with observed_at)."""

    # Documentation only: the body is read by admission.admit, which the
    # fast path shares, and a batch's items are validated one by one (a bad
    # item is rejected, not the batch).


def validate_reading(data: Any, *, max_beacons: int, prefix: str = "") -> ReadingIn:
    """Validate one decoded reading object."""
    if not isinstance(data, dict):
        raise Invalid([FieldError(prefix.rstrip(".") or "body", "must be an object")])
    try:
        return ReadingIn.model_validate(data, context={"max_beacons": max_beacons})
    except ValidationError as exc:
        raise Invalid(field_errors(exc, prefix)) from None


# ---- what is answered ---------------------------------------------------------

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Reading(Out):
    """The reading is stored (committed)."""

    id: int = Field(ge=1)
    badge_id: str
    pi_id: str = Field(description="The first gateway that posted it.")
    beacons: dict[str, int] = Field(
        description="RSSI in dBm per beacon id, without -128 values."
    )
    badge_strength: int | None
    observed_at: Timestamp = Field(
        description="When it was heard, UTC: the gateway's observed_at, or "
        "else received_at."
    )
    received_at: Timestamp = Field(description="When we received it.")


def _omitted(value) -> bool:
    return value is None


class ItemResult(Out):
    """What became of one item of a batch."""

    index: int = Field(ge=0)
    status: Literal["created", "duplicate", "rejected"]
    id: int | None = Field(
        None,
        exclude_if=_omitted,
        description="The stored reading's id (created only).",
    )
    errors: list[FieldErrorOut] | None = Field(
        None, exclude_if=_omitted, description="Why it was rejected (rejected only)."
    )


class BatchResult(Out):
    """A batch: what became of each item."""

    results: list[ItemResult]
    created: int = Field(ge=0)
    duplicate: int = Field(ge=0)
    rejected: int = Field(ge=0)


class ReadingsPage(Out):
    """A page of readings."""

    readings: list[Reading]
    next_after: int | None = Field(
        description="Pass as after to get the readings that follow: the last "
        "id returned, else the after given (null when neither)."
    )


# The largest stethoscope.readings.page_limit (config.py); the one in force
# is checked by the view and shown by the document (views.py).
MAX_PAGE_LIMIT = 10_000


def _no_default(schema: dict) -> None:
    # Absent means "not filtered", which a null default would not say.
    schema.pop("default", None)


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


# A query's time: one without an offset is UTC, as every time the API answers.
UtcDateTime = Annotated[IsoDateTime | None, AfterValidator(lambda m: m and _utc(m))]


class ReadingsQuery(Query):
    badge_id: Identifier = Field(
        None, description="Only this badge's readings.", json_schema_extra=_no_default
    )
    after: QueryInt(0, MAX_BIG_ID) = Field(
        None,
        description="Readings with an id greater than this; without it, the "
        "latest limit readings.",
        json_schema_extra=_no_default,
    )
    limit: QueryInt(1, MAX_PAGE_LIMIT) = Field(None, json_schema_extra=_no_default)
    since: UtcDateTime = Field(
        None,
        description="Only readings observed at or after this ISO-8601 time "
        "(UTC without an offset).",
        json_schema_extra=_no_default,
    )
    until: UtcDateTime = Field(
        None,
        description="Only readings observed before this ISO-8601 time (UTC "
        "without an offset); it must be later than since (400 naming until).",
        json_schema_extra=_no_default,
    )

    @field_validator("until")
    @classmethod
    def _later_than_since(
        cls, until: datetime.datetime | None, info: ValidationInfo
    ) -> datetime.datetime | None:
        # JSON Schema cannot compare two parameters: the description says it.
        since = info.data.get("since")
        if until is not None and since is not None and until <= since:
            raise ValueError("must be later than since")
        return until

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, values: Any) -> Any:
        # ?badge_id=&limit= as a form with empty fields sends it.
        if isinstance(values, dict):
            return {name: value for name, value in values.items() if value != ""}
        return values


def fingerprint(badge_id: str, beacons: dict[str, int]) -> str:
    """Identify a badge's advertisement: the badge and its beacons, nothing else.

    The gateway and badge_strength are left out: every gateway in range posts
    the same advertisement with its own strength, and those are duplicates.
    """
    # Ids are printable ASCII: control characters as separators cannot be
    # forged by an id, so two different readings never share a canonical form.
    pairs = "\x1e".join(f"{key}\x1f{beacons[key]}" for key in sorted(beacons))
    canonical = f"{badge_id}\x1d{pairs}"
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
