"""Import files as rows, with where each row is."""

import pytest

from stethoscope.errors import Invalid, UnsupportedMediaType
from stethoscope.registry.transfer import parse_import


def test_csv_rows_by_line_with_escaped_cells_read_back():
    body = "\ufeffid,room,label\r\nb1, hall ,'=SUM(1)\r\nb2,,,extra\r\n".encode()
    source, rows = parse_import("beacons", "text/csv", body)
    assert source == "csv"
    assert rows == [
        ("line 2", {"id": "b1", "room": "hall", "label": "=SUM(1)"}),
        ("line 3", {"id": "b2", "room": "", "label": ""}),
    ]


def test_json_rows_by_index_as_a_list_or_the_export():
    bare = parse_import("beacons", "application/json", b'[{"id": " b1 "}]')
    exported = parse_import(
        "beacons", "Application/JSON", b'{"beacons": [{"id": "b1"}]}'
    )
    assert bare == exported == ("json", [("0", {"id": "b1"})])


@pytest.mark.parametrize(
    "body", [b'{"beacons": [{"id": "r1"}]}', b'{"rooms": [], "beacons": []}']
)
def test_an_object_must_hold_only_the_kinds_own_list(body):
    # As the document says: {"rooms": [...]} and nothing else for rooms.
    with pytest.raises(Invalid) as caught:
        parse_import("rooms", "application/json", body)
    assert caught.value.field == "body"


def test_items_that_are_not_objects_are_named_by_index():
    with pytest.raises(Invalid) as caught:
        parse_import("beacons", "application/json", b'[{"id": "b1"}, 7, []]')
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("1", "must be an object"),
        ("2", "must be an object"),
    ]


@pytest.mark.parametrize(
    ("content_type", "body", "field"),
    [
        ("text/csv", b"\xff\xfe", "body"),
        ("text/csv", b"", "body"),
        ("application/json", b"{nope", "body"),
        ("application/json", b'{"a": 1, "b": 2}', "body"),
        # Past the csv module's field size limit (128 KiB).
        ("text/csv", b"id\r\n" + b"x" * (200 << 10), "line 2"),
    ],
)
def test_a_file_that_cannot_be_read(content_type, body, field):
    with pytest.raises(Invalid) as caught:
        parse_import("rooms", content_type, body)
    assert caught.value.field == field


def test_other_media_types_are_refused():
    with pytest.raises(UnsupportedMediaType):
        parse_import("rooms", "application/xml", b"<rooms/>")
