"""The labelled-readings CSV: parse and write rows, nothing else.

The exchange format for recorded data (docs/labelled_csv.md)::

    timestamp,badge_id,room,Kitchen_AP,Lounge_AP,Upstairs_AP
    2016-03-01T08:00:47Z,sphere-01,living,-93.0,-88.4,

``timestamp`` is ISO-8601 (no offset means UTC) or epoch seconds; ``room`` a
room id or name, empty for an unlabelled row; one column per beacon with the
RSSI in dBm, decimals allowed, empty for "not heard". Id cells that a
spreadsheet would run as a formula are written with a ``'`` before them,
which reading takes off again (see escape_cell). This module is pure: what
a room name means, and what is stored, is for the importer.
"""

import csv
import datetime
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..csvsafe import escape_cell, unescape_cell
from ..ingest.schemas import IDENTIFIER, NOT_HEARD, RSSI_MAX

FIXED_COLUMNS = ("timestamp", "badge_id", "room")
EPOCH_SECONDS = re.compile(r"[+-]?\d+(\.\d*)?")
# The timestamps a row may have. Far from datetime's own limits (years 1 and
# 9999), so that what is done with a reading's time (its run ends a second
# later, windows of hours or days around it) cannot overflow; and nothing
# was recorded before 1970, or will be after 3000.
EARLIEST = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
LATEST = datetime.datetime(3000, 1, 1, tzinfo=datetime.UTC)


class CsvFormatError(Exception):
    """The file cannot be read as a labelled-readings CSV at all (its header)."""


@dataclass(frozen=True, slots=True)
class LabelledRow:
    """One good row. ``room`` is the cell as written (None: unlabelled);
    ``beacons`` hold what was heard, RSSI rounded to whole dBm."""

    line: int
    observed_at: datetime.datetime
    badge_id: str
    room: str | None
    beacons: dict[str, int]


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with a row (or, for a run, lines ``line``..``last_line``)."""

    line: int
    field: str
    message: str
    last_line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.last_line is not None and self.last_line != self.line:
            where = f"lines {self.line}-{self.last_line}"
        return f"{where}: {self.field}: {self.message}"


def round_rssi(value: float) -> int:
    """Whole dBm, half away from zero (-80.5 → -81), as readings store them."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def parse_timestamp(text: str) -> datetime.datetime:
    """ISO-8601 (no offset: UTC) or epoch seconds, as an aware UTC datetime."""
    if EPOCH_SECONDS.fullmatch(text):
        seconds = float(text)
        # fromtimestamp would go through a float's rounding twice; whole
        # microseconds from the text keep 1700000000.123456 exact.
        whole, _, fraction = text.lstrip("+").partition(".")
        micros = int((fraction + "000000")[:6]) if fraction else 0
        sign = -1 if whole.startswith("-") else 1
        if not -1e11 < seconds < 1e11:
            raise ValueError("epoch seconds out of range")
        return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
            seconds=int(whole), microseconds=sign * micros
        )
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def format_timestamp(moment: datetime.datetime) -> str:
    """ISO-8601 in UTC with a Z, microseconds only when there are any."""
    text = moment.astimezone(datetime.UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_rssi(text: str) -> int | None:
    """Whole dBm, or None for not heard (an empty cell, or -128 itself)."""
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a number")
    rssi = round_rssi(value)
    if rssi == NOT_HEARD:
        return None
    if not NOT_HEARD < rssi <= RSSI_MAX:
        raise ValueError(f"RSSI {text} is outside {NOT_HEARD}..{RSSI_MAX} dBm")
    return rssi


def beacon_columns(header: Sequence[str]) -> list[str]:
    """The beacon ids of a header row; CsvFormatError when it is not one."""
    names = [name.strip() for name in header]
    if [name.lower() for name in names[:3]] != list(FIXED_COLUMNS):
        raise CsvFormatError(
            f"the header must begin with {','.join(FIXED_COLUMNS)} "
            f"(found {','.join(names[:3]) or 'nothing'})"
        )
    beacons = [unescape_cell(name) for name in names[3:]]
    seen = set()
    for position, beacon in enumerate(beacons, start=4):
        if not IDENTIFIER.fullmatch(beacon):
            raise CsvFormatError(
                f"column {position}: beacon id {beacon!r} is not 1-64 printable "
                "ASCII characters without spaces"
            )
        if beacon in seen:
            raise CsvFormatError(f"column {position}: beacon {beacon} appears twice")
        seen.add(beacon)
    return beacons


def read_rows(lines: Iterable[str]) -> Iterator[LabelledRow | RowError]:
    """Parse a labelled-readings CSV, one result per data row, in file order.

    A bad header raises CsvFormatError; a bad row gives a RowError naming its
    line and the first field found wrong. Blank lines are skipped.
    """
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFormatError("the file is empty (no header row)") from None
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: {exc}") from None
    beacons = beacon_columns(header)
    width = len(header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(reader.line_num, "row", str(exc))
            continue
        if not row:
            continue
        yield parse_row(reader.line_num, row, beacons, width)


def parse_row(
    line: int, row: Sequence[str], beacons: Sequence[str], width: int
) -> LabelledRow | RowError:
    """One data row; ``beacons`` are the header's beacon columns."""
    if len(row) != width:
        return RowError(line, "row", f"{len(row)} columns, the header has {width}")
    text = row[0].strip()
    try:
        observed_at = parse_timestamp(text)
    except (ValueError, OverflowError):
        return RowError(
            line, "timestamp", f"{text!r} is neither ISO-8601 nor epoch seconds"
        )
    if not EARLIEST <= observed_at < LATEST:
        return RowError(
            line,
            "timestamp",
            f"{text!r} is outside the years {EARLIEST.year}-{LATEST.year - 1}",
        )
    badge_id = unescape_cell(row[1].strip())
    if not IDENTIFIER.fullmatch(badge_id):
        return RowError(
            line,
            "badge_id",
            f"{badge_id!r} is not 1-64 printable ASCII characters without spaces",
        )
    heard = {}
    for beacon, cell in zip(beacons, row[3:], strict=True):
        cell = cell.strip()
        try:
            rssi = parse_rssi(cell)
        except ValueError as exc:
            message = str(exc) if "outside" in str(exc) else f"{cell!r} is not dBm"
            return RowError(line, beacon, message)
        if rssi is not None:
            heard[beacon] = rssi
    room = unescape_cell(row[2].strip()) or None
    return LabelledRow(line, observed_at, badge_id, room, heard)


def header_row(beacons: Sequence[str]) -> list[str]:
    return [*FIXED_COLUMNS, *(escape_cell(beacon) for beacon in beacons)]


def data_row(
    observed_at: datetime.datetime,
    badge_id: str,
    room: str | None,
    heard: dict[str, int],
    beacons: Sequence[str],
) -> list[str]:
    """The cells of one row under ``header_row(beacons)``."""
    return [
        format_timestamp(observed_at),
        escape_cell(badge_id),
        escape_cell(room or ""),
        *(str(heard[beacon]) if beacon in heard else "" for beacon in beacons),
    ]
