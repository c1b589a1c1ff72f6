"""Labelled readings as the project's CSV (docs/labelled_csv.md), streamed.

One row per badge update with its true room (empty when the stay is left
unlabelled). Rows are written a step (5 s, every badge) at a time, so a
file of millions of rows takes the memory of one step.
"""

import csv
import datetime
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from ..ingest.schemas import NOT_HEARD, RSSI_MAX
from ..labels.csvio import data_row, escape_cell, header_row
from .house import House
from .traffic import UPDATE_SECONDS, labelled_run

# Cell text by RSSI + 128: empty for "not heard", else the whole dBm.
_RSSI_TEXT = np.array(
    ["", *(str(v) for v in range(NOT_HEARD + 1, RSSI_MAX + 1))], dtype=object
)
# A cell holding one of these would be quoted by the csv module.
_NEEDS_QUOTING = set(',"\r\n')


@dataclass(frozen=True)
class CsvSummary:
    rows: int
    labelled: int
    badges: int
    first: datetime.datetime | None
    last: datetime.datetime | None


def _timestamps(moments: np.ndarray) -> list[str]:
    """``format_timestamp`` of each of ``moments`` (datetime64 in UTC):
    numpy formats a step's times faster than isoformat does one by one."""
    texts = np.datetime_as_string(moments, unit="us").tolist()
    # isoformat leaves out a fraction of zero; so must we.
    return [
        f"{text[:-7]}Z" if text.endswith(".000000") else f"{text}Z" for text in texts
    ]


def _plain(text: str) -> bool:
    # Written as it is: nothing to quote, nothing a spreadsheet would take
    # for a formula (csvio.escape_cell).
    return not _NEEDS_QUOTING.intersection(text) and escape_cell(text) == text


def write_csv(out: TextIO, house: House, **options) -> CsvSummary:
    """Write the labelled readings ``labelled_readings`` would give to
    ``out``; ``options`` as ``traffic.labelled_run`` takes them.

    The rows are exactly what ``csvio.data_row`` makes of each record under
    ``csvio.header_row`` (tests compare the two); they are built from the
    simulation's arrays a step at a time because a row by way of a dict and
    ``data_row`` costs three times as much.
    """
    simulation, start, steps = labelled_run(house, **options)
    beacon_ids = simulation.beacon_ids
    rooms = [room.id for room in house.rooms]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header_row(beacon_ids))
    # Ids the csv module would quote or a spreadsheet would run (legal, but
    # never in the simulated houses) take the slow path through data_row.
    fast = all(map(_plain, [*beacon_ids, *rooms, *simulation.badge_ids]))
    rows = labelled = 0
    first = last = None
    # The same times as schedule() gives, as numpy datetimes.
    start64 = np.datetime64(start.replace(tzinfo=None), "us")
    phases = (
        np.rint(simulation.phases * 1000).astype(np.int64).astype("timedelta64[ms]")
    )
    for update, moments in steps:
        count = len(moments)
        room_cells = [
            rooms[room] if flag else ""
            for room, flag in zip(
                update.rooms[:count].tolist(),
                update.labelled[:count].tolist(),
                strict=True,
            )
        ]
        if fast:
            cells = _RSSI_TEXT[update.rssi[:count].astype(np.int64) - NOT_HEARD]
            out.write(
                "".join(
                    f"{stamp},{badge},{room},{','.join(row)}\n"
                    for stamp, badge, room, row in zip(
                        _timestamps(
                            start64
                            + np.timedelta64(update.index * UPDATE_SECONDS, "s")
                            + phases[:count]
                        ),
                        simulation.badge_ids,
                        room_cells,
                        cells.tolist(),
                        strict=False,
                    )
                )
            )
        else:
            payloads = simulation.payloads(update)
            writer.writerows(
                data_row(moment, badge, room or None, payloads[i], beacon_ids)
                for i, (moment, badge, room) in enumerate(
                    zip(moments, simulation.badge_ids, room_cells, strict=False)
                )
            )
        rows += count
        labelled += sum(1 for room in room_cells if room)
        first = first or moments[0]
        last = moments[-1]
    return CsvSummary(rows, labelled, len(simulation.badge_ids), first, last)
