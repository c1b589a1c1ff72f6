"""Field types and base models every feature's ``schemas.py`` builds on.

Below every feature (ingest, registry, labels, learning, locating all import
from here and never from each other), so an id means the same thing
everywhere: 1 to 64 printable ASCII characters, no spaces. Bodies are strict
(a number is not a string, ``true`` is not 1); query strings are text by
nature, so their numbers are parsed from ASCII digits only (``int()`` and
pydantic's lax mode would also take "١٢", "1_000" or "12.0").

Each rule is declared where the OpenAPI document can see it (a pattern, a
bound, an enum), so the document refuses what the validators refuse; a rule
JSON Schema cannot state (one field later than another, a room listed
twice) stays a validator and is said in the field's description.
"""

import datetime
import re
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

# BLE RSSI is a signed byte; -128 is what badges send for "not heard".
NOT_HEARD = -128
RSSI_MAX = 20

IDENTIFIER = re.compile(r"[!-~]{1,64}")
Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[!-~]+$"),
]


def _integral_float(value: Any) -> Any:
    # JSON Schema's "integer" is any number with no fractional part: the
    # document's "type: integer" allows -67.0, so a strict int must take it
    # (as -67). 67.5, "67" and true are still refused, and a float beyond 64
    # bits (orjson's form of a huge integer) meets the field's bounds.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def BodyInt(minimum: int, maximum: int) -> Any:
    """A whole number in a JSON body, from ``minimum`` to ``maximum``: strict
    (not "67", not true), but -67.0 is -67."""
    # The bounds before the validator, as in QueryInt below.
    return Annotated[
        StrictInt, Ge(minimum), Le(maximum), BeforeValidator(_integral_float)
    ]


# Integer primary keys (INTEGER on SQLite and PostgreSQL): a larger id
# cannot exist, and PostgreSQL would refuse to compare with it.
MAX_ROW_ID = 2**31 - 1
RowId = BodyInt(1, MAX_ROW_ID)
# readings.id is a BIGINT.
MAX_BIG_ID = 2**63 - 1

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

# A moment in a response, written as Python's isoformat ("…+00:00"), as the
# API always has; pydantic's own form would be "…Z".
Timestamp = Annotated[
    datetime.datetime,
    PlainSerializer(datetime.datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


def _date_text(value: Any) -> Any:
    # Only the plain calendar date (what <input type=date> sends): pydantic's
    # lax date parsing would also take 1700000000 (epoch seconds) or a
    # date-time at midnight.
    if isinstance(value, datetime.date):
        return value
    if not isinstance(value, str) or len(value) != 10 or not value.isascii():
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date, YYYY-MM-DD") from None


Day = Annotated[datetime.date, BeforeValidator(_date_text)]
# A date field of a page's form: left blank, it is None (today).
FormDay = Annotated[
    datetime.date | None,
    BeforeValidator(lambda value: None if value in (None, "") else _date_text(value)),
]


def _ascii_digits(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise ValueError("must be a whole number")
        # More digits than any bound here has: refuse before int() works.
        if len(text.lstrip("0")) > 19:
            raise ValueError("is too large")
        return int(text)
    return value


def QueryInt(minimum: int, maximum: int) -> Any:
    """A whole number in a query string, from ``minimum`` to ``maximum``."""
    # annotated_types' bounds before the validator: Field(ge=, le=) or bounds
    # after it would reach the JSON schema as ge/le, which OpenAPI ignores.
    return Annotated[int, Ge(minimum), Le(maximum), BeforeValidator(_ascii_digits)]


class Body(BaseModel):
    """A JSON request body: strict types, unknown members refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Query(BaseModel):
    """A query string: unknown parameters refused, not silently ignored (a
    misspelt filter would otherwise return everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Out(BaseModel):
    """A response body, validated as our code builds it; the functional
    tests check every response against the document generated from these
    models."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldErrorOut(Out):
    field: str = Field(
        description="Dotted path of the field, e.g. beacons.b-hall; in a batch "
        "it starts with the item's index; body for the body as a whole."
    )
    message: str


class Error(BaseModel):
    """Every error response (stethoscope.errors renders them)."""

    # A conflict may say what it is with (e.g. badge_id, run_id).
    model_config = ConfigDict(extra="allow")

    status: int = Field(description="The HTTP status.")
    error: str = Field(
        description="The status as a name, e.g. not_found, or invalid (400) "
        "or duplicate (409)."
    )
    message: str
    errors: list[FieldErrorOut] | None = Field(
        None, description="Only on 400 invalid: the fields at fault."
    )
    request_id: str = Field(
        description="The request's id (also its X-Request-ID header): the "
        "server's log finds the request by it.",
    )
