"""Labelled data for the trainer: from the database or from a CSV file.

From the database, the data of a site are the readings of its completed
training runs (never an open or cancelled one), each labelled with the
run's room and grouped by the run. From a labelled-readings CSV (offline
evaluation) the runs are the file's stretches: per badge, consecutive
labelled rows in one room, as the importer makes them — so a file evaluated
offline and the same file imported and trained on are grouped alike.
"""

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..ingest.models import Reading
from ..labels.csvio import LabelledRow
from ..labels.importer import MAX_GAP, ONE_SECOND
from ..labels.models import TrainingRun
from ..registry.models import Beacon, Room
from .trainer import LabelledData


@dataclass
class Sequence:
    """Readings to predict (labelled or not), in file order."""

    readings: list[Mapping[str, int]]
    rooms: list[str | None]
    badges: np.ndarray
    seconds: np.ndarray


def labelled_data(readings, rooms, runs, badges, seconds, stays) -> LabelledData:
    """LabelledData of plain lists: its columns as the arrays training takes."""
    return LabelledData(
        readings,
        np.asarray(rooms, dtype=object),
        np.asarray(runs),
        np.asarray(badges, dtype=object),
        np.asarray(seconds, dtype=float),
        stays,
    )


def from_rows(rows: Iterable[LabelledRow]) -> tuple[LabelledData, Sequence]:
    """The labelled data of CSV rows, and every row as a sequence to predict.

    Runs follow the importer's stretch rule: a stretch is broken by a row in
    another room, an unlabelled row, a gap longer than the importer's
    ``MAX_GAP`` or a row that goes back in time.
    """
    readings, rooms, runs, badges, seconds = [], [], [], [], []
    all_readings, all_rooms, all_badges, all_seconds = [], [], [], []
    stays: list[list] = []
    open_run: dict[str, list] = {}  # badge -> [run, room, start, last]
    gap = MAX_GAP.total_seconds()
    for row in rows:
        moment = row.observed_at.timestamp()
        all_readings.append(row.beacons)
        all_rooms.append(row.room)
        all_badges.append(row.badge_id)
        all_seconds.append(moment)
        current = open_run.get(row.badge_id)
        continues = (
            current is not None
            and row.room == current[1]
            and current[3] <= moment <= current[3] + gap
        )
        if row.room is None:
            open_run.pop(row.badge_id, None)
            continue
        if not continues:
            current = [len(stays), row.room, moment, moment]
            stays.append([len(stays), row.badge_id, row.room, moment, moment])
            open_run[row.badge_id] = current
        current[3] = moment
        stays[current[0]][4] = moment + ONE_SECOND.total_seconds()
        readings.append(row.beacons)
        rooms.append(row.room)
        runs.append(current[0])
        badges.append(row.badge_id)
        seconds.append(moment)
    labelled = labelled_data(
        readings, rooms, runs, badges, seconds, [tuple(stay) for stay in stays]
    )
    sequence = Sequence(
        all_readings,
        all_rooms,
        np.asarray(all_badges, dtype=object),
        np.asarray(all_seconds, dtype=float),
    )
    return labelled, sequence


def from_database(session: Session, site_id: str) -> LabelledData:
    """The readings of the site's completed training runs, labelled and grouped.

    One indexed query per run ((badge_id, observed_at) index): a run's
    readings are those of its badge in [started_at, ended_at).
    """
    runs = session.scalars(
        select(TrainingRun)
        .join(Room, Room.id == TrainingRun.room_id)
        .where(
            Room.site_id == site_id,
            TrainingRun.ended_at.is_not(None),
            TrainingRun.cancelled_at.is_(None),
        )
        .order_by(TrainingRun.badge_id, TrainingRun.started_at)
    ).all()
    readings, rooms, groups, badges, seconds, stays = [], [], [], [], [], []
    for run in runs:
        rows = session.execute(
            select(Reading.beacons, Reading.observed_at)
            .where(
                Reading.badge_id == run.badge_id,
                Reading.observed_at >= run.started_at,
                Reading.observed_at < run.ended_at,
            )
            .order_by(Reading.observed_at)
        ).all()
        if not rows:
            continue
        stays.append(
            (
                run.id,
                run.badge_id,
                run.room_id,
                run.started_at.timestamp(),
                run.ended_at.timestamp(),
            )
        )
        for beacons, observed_at in rows:
            readings.append(beacons)
            rooms.append(run.room_id)
            groups.append(run.id)
            badges.append(run.badge_id)
            seconds.append(observed_at.timestamp())
    return labelled_data(readings, rooms, groups, badges, seconds, stays)


def beacon_changes(session: Session, site_id: str) -> dict[str, datetime.datetime]:
    """When each of the site's placed beacons was first heard: training runs
    older than that cannot know it."""
    rows = session.execute(
        select(Beacon.id, Beacon.first_heard)
        .join(Room, Room.id == Beacon.room_id)
        .where(Room.site_id == site_id, Beacon.first_heard.is_not(None))
    ).all()
    return dict(rows)
