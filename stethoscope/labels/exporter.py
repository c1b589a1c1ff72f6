"""LabelledExporter: the readings of completed training runs as labelled CSV.

This is the backup that matters most: labelled data cost staff hours of
walking badges around the house, and an export imported into an empty
database gives the same readings and the same runs (for runs made by an
import; see docs/labelled_csv.md for live runs).

Two passes over the same streamed query: the first collects the beacon ids
(the columns), the second writes the rows. Nothing but the beacon ids is
held in memory. Both passes run in one transaction, at REPEATABLE READ on
PostgreSQL (SQLite's read transaction is a snapshot already), so that a run
completed in between cannot bring a beacon the header lacks.

Badge, room and beacon ids a spreadsheet would run as formulas are written
as text (csvio.escape_cell): the file is meant to be opened in one.
"""

import csv
import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from ..ingest.models import Reading
from ..registry.models import Room
from .csvio import data_row, header_row
from .models import TrainingRun

YIELD_ROWS = 5000


@dataclass
class ExportSummary:
    rows: int = 0
    beacons: int = 0


class LabelledExporter:
    def __init__(self, session: Session):
        self.session = session

    def begin_snapshot(self) -> None:
        """Make both passes see the same data; before the session's first query."""
        if self.session.in_transaction():
            return
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.connection(
                execution_options={"isolation_level": "REPEATABLE READ"}
            )

    def _query(
        self, columns, site_id: str | None, since: datetime.datetime | None
    ) -> Select:
        readings = Reading.__table__.c
        runs = TrainingRun.__table__.c
        query = (
            select(*columns)
            .select_from(Reading.__table__)
            .join(
                TrainingRun.__table__,
                and_(
                    runs.badge_id == readings.badge_id,
                    readings.observed_at >= runs.started_at,
                    readings.observed_at < runs.ended_at,
                ),
            )
            .where(runs.ended_at.is_not(None), runs.cancelled_at.is_(None))
        )
        if site_id is not None:
            query = query.join(Room.__table__, Room.__table__.c.id == runs.room_id)
            query = query.where(Room.__table__.c.site_id == site_id)
        if since is not None:
            query = query.where(readings.observed_at >= since)
        return query

    def beacon_ids(
        self, *, site_id: str | None = None, since: datetime.datetime | None = None
    ) -> list[str]:
        """Every beacon heard in the exported readings, sorted: the columns."""
        seen: set[str] = set()
        query = self._query([Reading.__table__.c.beacons], site_id, since)
        for (beacons,) in self.session.execute(
            query.execution_options(yield_per=YIELD_ROWS)
        ):
            seen.update(beacons)
        return sorted(seen)

    def rows(
        self, *, site_id: str | None = None, since: datetime.datetime | None = None
    ) -> Iterator[tuple[datetime.datetime, str, str, dict[str, int]]]:
        """(observed_at, badge, room id, beacons), in time order per badge."""
        readings = Reading.__table__.c
        query = self._query(
            [
                readings.observed_at,
                readings.badge_id,
                TrainingRun.__table__.c.room_id,
                readings.beacons,
            ],
            site_id,
            since,
        ).order_by(readings.badge_id, readings.observed_at, readings.id)
        yield from self.session.execute(query.execution_options(yield_per=YIELD_ROWS))

    def write(
        self,
        out: TextIO,
        *,
        site_id: str | None = None,
        since: datetime.datetime | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ExportSummary:
        """Write the CSV to ``out`` (opened with newline="")."""
        self.begin_snapshot()
        beacons = self.beacon_ids(site_id=site_id, since=since)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header_row(beacons))
        summary = ExportSummary(beacons=len(beacons))
        for observed_at, badge_id, room_id, heard in self.rows(
            site_id=site_id, since=since
        ):
            writer.writerow(data_row(observed_at, badge_id, room_id, heard, beacons))
            summary.rows += 1
            if progress is not None and summary.rows % YIELD_ROWS == 0:
                progress(summary.rows)
        if progress is not None:
            progress(summary.rows)
        return summary
