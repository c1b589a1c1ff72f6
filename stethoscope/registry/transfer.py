"""Rooms and beacons as files: the CSV or JSON an admin exports, edits and
imports back (the JSON API's /export/… and /import/…, and the import form
of /admin/house).

An import is all or nothing (RegistryService.import_rooms); here the file
becomes rows, each with where it is for the errors: ``line 3`` of a CSV
(the header is line 1) or the index of a JSON list (from 0).
"""

import csv
import io

from pyramid.response import Response

from ..csvsafe import escape_cell, unescape_cell
from ..endpoints import parse_json
from ..errors import FieldError, Invalid, UnsupportedMediaType, ValidationError
from .schemas import (
    BEACON_COLUMNS,
    MAX_IMPORT_ROWS,
    ROOM_COLUMNS,
    BeaconsExport,
    ExportedBeacon,
    ImportResult,
    Room,
    RoomsExport,
)
from .services import RegistryService

CSV_TYPES = ("text/csv", "text/plain", "application/csv")
KINDS = ("rooms", "beacons")


def parse_import(kind: str, content_type: str, body: bytes) -> tuple[str, list]:
    """(format, [(where, row), ...]) of an import file of ``kind``, CSV or JSON.

    JSON: a list of objects, or ``{kind: [...]}`` as the export writes it
    (rooms' export is ``{"rooms": [...]}``). CSV: a header row naming the
    columns.
    """
    content_type = content_type.lower()
    if content_type == "application/json":
        return "json", _json_rows(kind, parse_json(body))
    if content_type in CSV_TYPES:
        return "csv", _csv_rows(body)
    raise UnsupportedMediaType("Content-Type must be text/csv or application/json")


def _json_rows(kind: str, data) -> list:
    if isinstance(data, dict) and data.keys() == {kind}:
        data = data[kind]
    if not isinstance(data, list):
        raise ValidationError(
            "body", f'must be a JSON list of objects or {{"{kind}": [...]}}'
        )
    if len(data) > MAX_IMPORT_ROWS:
        raise ValidationError("body", f"at most {MAX_IMPORT_ROWS} rows")
    errors = [
        FieldError(str(index), "must be an object")
        for index, item in enumerate(data)
        if not isinstance(item, dict)
    ]
    if errors:
        raise Invalid(errors)
    return [
        (
            str(index),
            {k: v.strip() if isinstance(v, str) else v for k, v in item.items()},
        )
        for index, item in enumerate(data)
    ]


def _csv_rows(body: bytes) -> list:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("body", "CSV must be UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise ValidationError("body", "CSV needs a header row")
    rows = []
    try:
        for row in reader:
            if len(rows) >= MAX_IMPORT_ROWS:
                raise ValidationError("body", f"at most {MAX_IMPORT_ROWS} rows")
            # Cells our export wrote as text (export_response) read back;
            # cells past the header's columns (key None) are not read.
            cells = {
                key: unescape_cell(value.strip()) if isinstance(value, str) else value
                for key, value in row.items()
                if key is not None
            }
            rows.append((f"line {reader.line_num}", cells))
    except csv.Error as exc:
        # The DictReader counts only the lines of rows it returned.
        line = reader.reader.line_num
        raise Invalid([FieldError(f"line {line}", str(exc))]) from None
    return rows


def import_file(
    service: RegistryService, kind: str, content_type: str, body: bytes
) -> ImportResult:
    """Import a file of ``kind`` (rooms or beacons), all or nothing."""
    source, rows = parse_import(kind, content_type, body)
    if kind == "rooms":
        result = service.import_rooms(rows, source)
    else:
        result = service.import_beacons(rows, source)
    return ImportResult(
        **{key: len(ids) for key, ids in result.items()},
        created_ids=result["created"],
        updated_ids=result["updated"],
    )


def exported(service: RegistryService, kind: str, site: str | None):
    """RoomsExport or BeaconsExport: what import takes back."""
    site = service.check_site_filter(site)
    if kind == "rooms":
        return RoomsExport(rooms=[Room.of(room) for room in service.rooms(site)])
    return BeaconsExport(
        beacons=[ExportedBeacon.of(beacon) for beacon in service.beacons(site)]
    )


def csv_response(kind: str, export) -> Response:
    """The export as a CSV file that a spreadsheet opens safely."""
    columns = ROOM_COLUMNS if kind == "rooms" else BEACON_COLUMNS
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, columns, lineterminator="\r\n")
    writer.writeheader()
    for row in getattr(export, kind):
        cells = {
            key: "" if value is None else value
            for key, value in row.model_dump(include=set(columns)).items()
        }
        if "adjacent" in cells:
            cells["adjacent"] = ";".join(cells["adjacent"])
        # Names and ids are text an admin or a gateway chose: one that a
        # spreadsheet would run as a formula (=, +, -, @) is written as text,
        # as the labelled export does; the import reads it back. The floor
        # is a number and stays one.
        writer.writerow(
            {
                key: escape_cell(value) if isinstance(value, str) else value
                for key, value in cells.items()
            }
        )
    response = Response(
        body=out.getvalue().encode(), content_type="text/csv", charset="utf-8"
    )
    response.content_disposition = f'attachment; filename="{kind}.csv"'
    return response
