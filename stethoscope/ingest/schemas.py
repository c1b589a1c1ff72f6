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
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..endpoints import field_errors, json_body, parse_json
from ..errors import FieldError, Invalid
from ..schemas import (
    IDENTIFIER,
    ISO_DATE_START,
    NOT_HEARD,
    RSSI_MAX,
    Identifier,
    IsoDateTime,
)

__all__ = [
    "IDENTIFIER",
    "ISO_DATE_START",
    "NOT_HEARD",
    "RSSI_MAX",
    "FieldError",
    "Identifier",
    "InvalidPayload",
    "IsoDateTime",
    "ReadingIn",
    "field_errors",
    "fingerprint",
    "parse_json",
    "validate_reading",
    "validated_body",
]

Rssi = Annotated[StrictInt, Field(ge=NOT_HEARD, le=RSSI_MAX)]


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


# The error family and the JSON reader are shared by every feature.
InvalidPayload = Invalid


def validated_body(request, model: type[BaseModel], max_bytes: int) -> BaseModel:
    """A JSON request body validated by ``model`` (see endpoints.json_body)."""
    return json_body(request, model, max_bytes)


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
