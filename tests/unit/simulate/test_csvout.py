"""The labelled CSV: what csvio reads back, and what data_row would write."""

import csv
import datetime
import io

import pytest

from stethoscope.labels.csvio import (
    LabelledRow,
    data_row,
    header_row,
    read_rows,
)
from stethoscope.scripts import simulate as simulate_script
from stethoscope.simulate.csvout import write_csv
from stethoscope.simulate.house import demo_house, generated_house
from stethoscope.simulate.traffic import DEFAULT_START, labelled_readings


@pytest.mark.parametrize(
    "start",
    [
        DEFAULT_START,
        datetime.datetime(
            2024,
            3,
            31,
            0,
            59,
            58,
            500,
            tzinfo=datetime.timezone(datetime.timedelta(hours=2)),
        ),
    ],
)
def test_rows_are_what_data_row_writes_of_the_records(start):
    house = demo_house()
    options = {
        "badges": 9,
        "seconds": 3 * 3600,
        "seed": 4,
        "unlabelled_share": 0.3,
        "start": start,
    }
    out = io.StringIO()
    summary = write_csv(out, house, **options)

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    beacons = [b.id for b in house.beacons]
    writer.writerow(header_row(beacons))
    records = list(labelled_readings(house, **options))
    for r in records:
        writer.writerow(
            data_row(r.observed_at, r.badge_id, r.room_id, r.beacons, beacons)
        )
    assert out.getvalue() == expected.getvalue()
    assert summary.rows == len(records)
    assert summary.labelled == sum(r.room_id is not None for r in records)
    assert 0 < summary.labelled < summary.rows


def test_ids_a_spreadsheet_would_run_are_written_as_text():
    """Such ids leave the fast path: what data_row writes, quote and all."""
    house = demo_house()
    house.badge_prefix = "=HYPERLINK(1)-"
    options = {"badges": 2, "seconds": 600, "seed": 1}
    out = io.StringIO()
    write_csv(out, house, **options)

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    beacons = [b.id for b in house.beacons]
    writer.writerow(header_row(beacons))
    for r in labelled_readings(house, **options):
        writer.writerow(
            data_row(r.observed_at, r.badge_id, r.room_id, r.beacons, beacons)
        )
    assert out.getvalue() == expected.getvalue()
    assert ",'=HYPERLINK(1)-001," in out.getvalue()
    badges = {row.badge_id for row in read_rows(io.StringIO(out.getvalue()))}
    assert badges == {"=HYPERLINK(1)-001", "=HYPERLINK(1)-002"}


def test_the_file_parses_without_errors_with_the_rows_asked_for(tmp_path):
    path = tmp_path / "sim.csv"
    status = simulate_script.main(
        [
            "csv",
            str(path),
            "--house",
            "generated",
            "--badges",
            "50",
            "--readings",
            "5000",
        ]
    )
    assert status == 0
    with open(path, newline="") as handle:
        rows = list(read_rows(handle))
    assert len(rows) == 5000
    assert all(isinstance(row, LabelledRow) for row in rows)
    house = generated_house()
    room_ids = {room.id for room in house.rooms}
    assert {row.room for row in rows} <= room_ids
    assert all(len(row.beacons) <= 8 for row in rows)
    assert {row.badge_id for row in rows} == set(house.badge_ids(50))


def test_days_and_start(tmp_path, capsys):
    path = tmp_path / "sim.csv"
    status = simulate_script.main(
        ["csv", str(path), "--days", "0.01", "--start", "2024-06-01T12:00:00"]
    )
    assert status == 0
    with open(path, newline="") as handle:
        rows = list(read_rows(handle))
    # 864 s of six badges updating every 5 s (the last update at < 864 s).
    assert 6 * 172 <= len(rows) <= 6 * 173
    assert rows[0].observed_at.isoformat().startswith("2024-06-01T12:00:0")
    assert f"{len(rows):,} rows" in capsys.readouterr().err


def test_unlabelled_share_writes_empty_rooms(tmp_path):
    path = tmp_path / "sim.csv"
    assert (
        simulate_script.main(
            ["csv", str(path), "--readings", "3000", "--unlabelled-share", "1"]
        )
        == 0
    )
    with open(path, newline="") as handle:
        assert {row.room for row in read_rows(handle)} == {None}
