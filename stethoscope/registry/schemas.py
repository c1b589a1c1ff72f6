"""The registry's request and response models: one per body, query, path and
answer of its JSON API (stethoscope.registry.views), also used by the admin
pages' forms and the import's rows, so that a name, a floor or a timezone
is checked by one piece of code wherever it comes from.

Text from a form or a CSV cell is text: a floor may come as "2", adjacent
rooms as "hall;lounge", and an empty cell means "none". The before-validators
below take those forms too; a JSON body gets the same answers.
"""

import datetime
import functools
import re
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StringConstraints,
    create_model,
)

from ..schemas import Body, BodyInt, Identifier, Out, Query

# Names are shown on pages and in exports; control characters would break
# both, and a text direction override (U+202A-U+202E, U+2066-U+2069) would
# reverse what is shown after it ("Room 4" reading as another room's name).
_CONTROLS = r"\x00-\x1f\x7f"
_OVERRIDES = r"\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_BIDI = re.compile(f"[{_OVERRIDES}]")
# The same rules as the document's patterns (JSON Schema's regexes read
# these escapes as Python's and pydantic's do). A name needs a character
# that is not a space: it is stripped, and must not be empty then.
_REFUSED = _CONTROLS + _OVERRIDES
NAME_TEXT = f"^[^{_REFUSED}]*$"
NAME = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"
NAME_MAX = 200
# A floor number, as the SmallInteger column holds it and a building has them.
FLOOR_MIN, FLOOR_MAX = -20, 200
# A room's longest stay before the long-stay alert (stethoscope.alerts): a
# minute to a day. Stays are watched for a day at most; no limit is null.
MAX_STAY_MIN, MAX_STAY_MAX = 1, 24 * 60
# One object of the API, and one import file (JSON or CSV). waitress caps
# every body at 2 MiB before this.
MAX_BODY_BYTES = 64 << 10
MAX_IMPORT_BYTES = 1 << 20
MAX_IMPORT_ROWS = 10_000


@functools.cache
def timezones() -> tuple[str, ...]:
    """Every IANA timezone name this system knows, sorted (for the forms)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _blank_is_none(value: Any) -> Any:
    value = _stripped(value)
    return None if value == "" else value


def _name_text(value: Any) -> Any:
    # The patterns below refuse the same; this says why, in words.
    value = _stripped(value)
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if isinstance(value, str) and _BIDI.search(value):
        raise ValueError("must not contain text direction overrides")
    return value


def _timezone(value: str) -> str:
    if value not in timezones():
        raise ValueError("must be an IANA timezone name, e.g. Europe/London")
    zoneinfo.ZoneInfo(value)  # loads: a listed name that cannot load is a bug
    return value


def _whole_number_text(value: Any) -> Any:
    value = _blank_is_none(value)
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,4}", value):
            raise ValueError("must be a whole number or empty")
        return int(value)
    return value


def _id_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


_ShortName = Annotated[str, StringConstraints(max_length=NAME_MAX, pattern=NAME_TEXT)]

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_MAX, pattern=NAME),
    BeforeValidator(_name_text),
]
OptionalName = Annotated[
    _ShortName | None,
    BeforeValidator(_name_text),
    BeforeValidator(_blank_is_none),
    Field(description="Blank (or null): none."),
]
# An id or none: a form's or CSV cell's empty value is none, and so is a
# JSON body's "", which the document therefore allows (an Identifier but for
# its length). Not a union with Literal[""]: pydantic would name the union's
# member in an error's field (site.str).
OptionalId = Annotated[
    Annotated[str, StringConstraints(strict=True, max_length=64, pattern=r"^[!-~]*$")]
    | None,
    AfterValidator(lambda value: value or None),
    BeforeValidator(_stripped),
    Field(description='An id; "" (or null) is none.'),
]
Timezone = Annotated[
    str,
    AfterValidator(_timezone),
    BeforeValidator(_stripped),
    # The names themselves, so that the document refuses what _timezone does.
    Field(
        description="An IANA timezone name, e.g. Europe/London.",
        json_schema_extra={"enum": list(timezones())},
    ),
]
Floor = Annotated[
    BodyInt(FLOOR_MIN, FLOOR_MAX) | None,
    BeforeValidator(_whole_number_text),
]
MaxStay = Annotated[
    BodyInt(MAX_STAY_MIN, MAX_STAY_MAX) | None,
    BeforeValidator(_whole_number_text),
    Field(
        description="Minutes a resident may stay in the room before a "
        "long_stay alert; null: no limit."
    ),
]
Adjacent = Annotated[
    list[Identifier],
    AfterValidator(lambda ids: sorted(set(ids))),
    BeforeValidator(_id_list),
    Field(description="Rooms of the same site; also taken as ids separated by ';'."),
]


def _path(
    name: str, key: str, description: str, kind: Any = Identifier
) -> type[BaseModel]:
    """The model of a route's placeholder ``key`` (an Identifier)."""
    return create_model(name, **{key: (kind, Field(description=description))})


# ---- responses of rows --------------------------------------------------------

# Columns the API calls by another name (what a row refers to, by id).
_COLUMN_OF = {"site": "site_id", "room": "room_id"}


class Row(Out):
    """A response that shows a row of stethoscope.registry.models."""

    @classmethod
    def of(cls, row, **given):
        """The response of ``row``: each field is the row's attribute of that
        name (``site`` and ``room`` its ``site_id`` and ``room_id``), unless
        ``given``."""
        return cls(
            **{
                name: given[name]
                if name in given
                else getattr(row, _COLUMN_OF.get(name, name))
                for name in cls.model_fields
            }
        )


# ---- sites -------------------------------------------------------------------


SitePath = _path("SitePath", "site_id", "The site's id (may contain '/').")


class SiteIn(Body):
    id: Identifier
    name: Name
    timezone: Timezone


class SiteChange(Body):
    """Fields left out (or null) keep their values."""

    name: Name | None = None
    timezone: Timezone | None = None


class Site(Row):
    """The site."""

    id: str
    name: str
    timezone: str
    created_at: datetime.datetime


class SiteList(Out):
    """Every site, by id."""

    sites: list[Site]


# ---- rooms -------------------------------------------------------------------


class SiteFilter(Query):
    site: Identifier | None = Field(None, description="Only this site's.")


RoomPath = _path("RoomPath", "room_id", "The room's id (may contain '/').")


class RoomIn(Body):
    id: Identifier
    name: Name
    site: Identifier
    floor: Floor = None
    max_stay_minutes: MaxStay = None
    adjacent: Adjacent = []


class RoomChange(Body):
    """Fields left out keep their values; floor and max_stay_minutes null
    clear them; adjacent replaces the set, both ways round."""

    name: Name | None = None
    site: Identifier | None = None
    floor: Floor = None
    max_stay_minutes: MaxStay = None
    adjacent: Adjacent | None = None


class Room(Row):
    """The room."""

    id: str
    name: str
    site: str
    floor: int | None
    max_stay_minutes: int | None
    adjacent: list[str]

    @classmethod
    def of(cls, row, **given) -> "Room":
        given.setdefault("adjacent", [other.id for other in row.adjacent])
        return super().of(row, **given)


class RoomList(Out):
    """Rooms, by site and id."""

    rooms: list[Room]


# ---- beacons -----------------------------------------------------------------


BeaconPath = _path("BeaconPath", "beacon_id", "The beacon's id (may contain '/').")


class BeaconIn(Body):
    id: Identifier
    room: OptionalId = None
    label: OptionalName = None


class BeaconChange(Body):
    """Fields left out keep their values; room null unplaces the beacon."""

    room: OptionalId = None
    label: OptionalName = None


class Beacon(Row):
    """The beacon."""

    id: str
    room: str | None
    label: str | None
    first_heard: datetime.datetime | None
    last_heard: datetime.datetime | None


class BeaconList(Out):
    """Beacons, by id."""

    beacons: list[Beacon]


# ---- gateways and badges as described ----------------------------------------


def _device_paths(kind: str) -> tuple[type[BaseModel], type[BaseModel]]:
    """The paths of a gateway or badge described, and of one heard or not
    yet: not an Identifier, since an id no device can have is refused 400
    (id), as the form on the admin page is."""
    name, key = kind.capitalize(), f"{kind}_id"
    return (
        _path(f"{name}Path", key, f"The {kind}'s id."),
        _path(f"New{name}Path", key, f"The {kind}'s id, heard or not yet.", str),
    )


GatewayPath, NewGatewayPath = _device_paths("gateway")


class GatewayChange(Body):
    """Fields left out keep their values."""

    name: OptionalName = None
    site: OptionalId = None


class RegistryGateway(Row):
    """The gateway, as described and as seen."""

    id: str
    name: str | None
    site: str | None
    first_seen: datetime.datetime | None
    last_seen: datetime.datetime | None
    last_ip: str | None
    posts: int = Field(ge=0)
    duplicates: int = Field(ge=0)


class RegistryGatewayList(Out):
    """Every gateway row, by id."""

    gateways: list[RegistryGateway]


BadgePath, NewBadgePath = _device_paths("badge")


class BadgeChange(Body):
    """Fields left out keep their values."""

    wearer: OptionalName = Field(
        None,
        description="Who wears it, as staff know them. Personal information: "
        "never logged.",
    )
    site: OptionalId = None
    active: StrictBool | None = None


class RegistryBadge(Row):
    """The badge with its wearer."""

    id: str
    wearer: str | None
    site: str | None
    active: bool
    first_seen: datetime.datetime | None
    last_seen: datetime.datetime | None
    last_gateway_id: str | None


class RegistryBadgeList(Out):
    """Every badge row with its wearer, by id."""

    badges: list[RegistryBadge]


class UnplacedBadge(Row):
    id: str
    first_seen: datetime.datetime | None
    last_seen: datetime.datetime | None
    last_gateway_id: str | None


class Unplaced(Out):
    """Beacons heard but in no room, and badges seen but at no site (no
    wearers: placing a badge needs no name)."""

    beacons: list[Beacon]
    badges: list[UnplacedBadge]


# ---- gateways and badges as seen (traffic) -----------------------------------


class SeenGateway(Out):
    id: str
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    seconds_since_seen: float
    online: bool = Field(description="Seen within stethoscope.activity.online_seconds.")
    last_ip: str | None
    posts: int = Field(ge=0)
    duplicates: int = Field(ge=0)


class SeenGatewayList(Out):
    """Every gateway that has posted, most recently seen first."""

    gateways: list[SeenGateway]


class SeenBadge(Out):
    id: str
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    seconds_since_seen: float
    last_gateway_id: str | None
    posts: int = Field(ge=0)
    duplicates: int = Field(ge=0)


class SeenBadgeList(Out):
    """Every badge that has been heard, most recently seen first."""

    badges: list[SeenBadge]


# ---- import and export -------------------------------------------------------

ROOM_COLUMNS = ("id", "name", "site", "floor", "max_stay_minutes", "adjacent")
BEACON_COLUMNS = ("id", "room", "label")


class RoomRow(RoomIn):
    """A room of an import file; other columns are ignored."""

    model_config = ConfigDict(extra="ignore")


class BeaconRow(BeaconIn):
    """A beacon of an import file; other columns are ignored."""

    model_config = ConfigDict(extra="ignore")


# An import's JSON file, as the document gives it: the rows, or the
# export's object of them. stethoscope.registry.transfer reads the file and
# the service checks each row with the row's model, so that an error names
# the row; these models say the same in the document.
ImportedRooms = Annotated[list[RoomRow], Field(max_length=MAX_IMPORT_ROWS)]
ImportedBeacons = Annotated[list[BeaconRow], Field(max_length=MAX_IMPORT_ROWS)]


class RoomsFile(Body):
    rooms: ImportedRooms


class BeaconsFile(Body):
    beacons: ImportedBeacons


class RoomsImport(RootModel[ImportedRooms | RoomsFile]):
    """Rooms to import: a list of them, or the export's object."""


class BeaconsImport(RootModel[ImportedBeacons | BeaconsFile]):
    """Beacons to import: a list of them, or the export's object."""


class ExportQuery(SiteFilter):
    format: Literal["json", "csv"] = "json"


class ExportedBeacon(Row):
    id: str
    room: str | None
    label: str | None


class RoomsExport(Out):
    """Rooms as import takes them back."""

    rooms: list[Room]


class BeaconsExport(Out):
    """Beacons as import takes them back."""

    beacons: list[ExportedBeacon]


class ImportResult(Out):
    """What the import did."""

    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    created_ids: list[str]
    updated_ids: list[str]
