"""The reading payload: strict parsing and validation.

Gateways in the field send::

    {"badge_id": "1", "pi_id": "2", "beacons": {"a": -30, "b": -35}}

with optional ``badge_strength`` and ``observed_at``. The body is parsed by
orjson, which already refuses NaN/Infinity, lone surrogates, invalid UTF-8
and nesting deeper than 1024; integers beyond 64 bits become floats, which
the strict integer fields below refuse. Unknown fields are ignored so that a
gateway sending something new is not cut off.
"""

import datetime
import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pyramid.httpexceptions import HTTPRequestEntityTooLarge, HTTPUnsupportedMediaType

# BLE RSSI is a signed byte; -128 is what badges send for "not heard".
NOT_HEARD = -128
RSSI_MAX = 20

# Ids: 1 to 64 printable ASCII characters, no spaces.
IDENTIFIER = re.compile(r"[!-~]{1,64}")
Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[!-~]+$"),
]
Rssi = Annotated[StrictInt, Field(ge=NOT_HEARD, le=RSSI_MAX)]


# An ISO-8601 date-time starts with its date. ASCII digits only: \d would
# also match other scripts' digits.
ISO_DATE_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_text_only(value: Any) -> Any:
    # Lax datetime parsing would take 1700000000 as epoch seconds, and the
    # texts "1700000000", "-1" and "1700000000.5" too (more digits as
    # milliseconds); the contract is ISO-8601 text, so say so instead of
    # guessing. Text that starts with a date is left to pydantic's parser,
    # which accepts the ISO forms (offset or Z or none, fractional seconds,
    # a space for the T) and refuses the rest.
    if not isinstance(value, str) or not ISO_DATE_START.match(value):
        raise ValueError("must be an ISO-8601 date-time string")
    return value


IsoDateTime = Annotated[datetime.datetime, BeforeValidator(_iso_text_only)]


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
    badge_strength: Annotated[StrictInt, Field(ge=-128, le=127)] | None = Field(
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


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_json(self) -> dict:
        return {"field": self.field, "message": self.message}


class InvalidPayload(Exception):
    """The body is not an acceptable reading; ``errors`` name the fields."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _field_name(location: tuple) -> str:
    parts = [str(part) for part in location if part not in ("[key]", "")]
    return ".".join(parts) or "body"


def field_errors(error: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError(
            prefix + _field_name(detail["loc"]),
            detail["msg"].removeprefix("Value error, "),
        )
        for detail in error.errors(include_url=False, include_input=False)
    ]


def parse_json(body: bytes) -> Any:
    """Parse a request body, raising InvalidPayload for anything not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload([FieldError("body", f"not valid JSON: {exc}")]) from None


def validated_body(request, model: type[BaseModel], max_bytes: int) -> BaseModel:
    """A JSON request body validated by ``model``: 415 when it is not JSON,
    413 above ``max_bytes``, InvalidPayload (400 naming the field) otherwise."""
    if request.content_type != "application/json":
        raise HTTPUnsupportedMediaType("Content-Type must be application/json")
    body = request.body
    if len(body) > max_bytes:
        raise HTTPRequestEntityTooLarge(f"the body may be at most {max_bytes} bytes")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidPayload([FieldError("body", "must be an object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(field_errors(exc)) from None


def validate_reading(data: Any, *, max_beacons: int, prefix: str = "") -> ReadingIn:
    """Validate one decoded reading object."""
    if not isinstance(data, dict):
        raise InvalidPayload(
            [FieldError(prefix.rstrip(".") or "body", "must be an object")]
        )
    try:
        return ReadingIn.model_validate(data, context={"max_beacons": max_beacons})
    except ValidationError as exc:
        raise InvalidPayload(field_errors(exc, prefix)) from None


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
