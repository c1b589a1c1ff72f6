"""Backups as docs/operations.md §9 takes them, restored into an empty
database: every row comes back (readings, training runs, model versions,
the audit log, and the rest), and the restored database takes new readings.

SQLite through Python's online backup API (what ``sqlite3 FILE ".backup
'COPY'"`` does); PostgreSQL through pg_dump -Fc and pg_restore, the
binaries of the test session's private cluster.
"""

import datetime
import sqlite3
import subprocess

from sqlalchemy import MetaData, create_engine, insert, make_url, select
from sqlalchemy.orm import Session

from stethoscope.audit.services import AuditService
from stethoscope.ingest.models import Reading
from stethoscope.labels.models import TrainingRun
from tests.support.models import add_site, register_model
from tests.support.services import _postgres_bindir

T0 = datetime.datetime(2026, 11, 20, 9, 0, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)


def reading(n: int) -> dict:
    moment = T0 + n * MINUTE
    return {
        "badge_id": f"B{n % 3}",
        "gateway_id": "pi-1",
        "received_at": moment,
        "observed_at": moment,
        "badge_strength": -60 if n % 2 else None,
        "beacons": {"b1": -50 - n, "b2": -70},
        "fingerprint": f"{n:032x}",
    }


def fill(engine, model_dir) -> None:
    """A little of everything a house has after some use."""
    add_site(engine, "rose", ["lounge", "kitchen"])
    with Session(engine) as session, session.begin():
        session.execute(insert(Reading), [reading(n) for n in range(50)])
        session.add(
            TrainingRun(
                badge_id="B1",
                room_id="lounge",
                started_at=T0,
                ended_at=T0 + 30 * MINUTE,
                created_by="matron",
            )
        )
        AuditService(session).record(
            "training.start",
            actor="matron",
            actor_type="user",
            target="B1",
            ip="192.0.2.7",
            details={"room": "lounge"},
        )
    register_model(engine, model_dir, "rose", ["lounge", "kitchen"])


def everything(url: str) -> dict[str, list]:
    """Every row of every table (the migrations' bookkeeping included)."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted(
                    (tuple(row) for row in connection.execute(select(table))),
                    key=repr,
                )
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def takes_a_new_reading(url: str) -> int:
    """Store one more reading; its id (the id sequence came back too)."""
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            row = Reading(**reading(50))
            session.add(row)
            session.flush()
            return row.id
    finally:
        engine.dispose()


def assert_restored(before: dict, after: dict) -> None:
    assert after == before
    for table in (
        "readings",
        "training_runs",
        "model_versions",
        "audit_events",
        "alembic_version",
    ):
        assert before[table], table
    assert len(after["readings"]) == 50


def filled(url: str, model_dir) -> None:
    engine = create_engine(url)
    try:
        fill(engine, model_dir)
    finally:
        engine.dispose()


def test_sqlite_online_backup_restores_every_row(sqlite_url, tmp_path):
    filled(sqlite_url, tmp_path / "models")
    source = sqlite_url.removeprefix("sqlite:///")
    backup = tmp_path / "backup.sqlite"

    # What docs/operations.md gives: the backup API copies a consistent
    # snapshot page by page while the server goes on writing.
    with sqlite3.connect(source) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    live.close()
    copy.close()
    # Restoring: the copy becomes the database file of an empty directory.
    restored = tmp_path / "restored" / "stethoscope.sqlite"
    restored.parent.mkdir()
    with sqlite3.connect(backup) as copy, sqlite3.connect(restored) as target:
        copy.backup(target)
    copy.close()
    target.close()

    restored_url = f"sqlite:///{restored}"
    assert_restored(everything(sqlite_url), everything(restored_url))
    assert takes_a_new_reading(restored_url) > max(
        row[0] for row in everything(sqlite_url)["readings"]
    )


def test_postgresql_dump_restores_every_row(postgres_server, postgres_url, tmp_path):
    filled(postgres_url, tmp_path / "models")
    bindir = _postgres_bindir()
    socket = str(postgres_server.sockets)
    name = make_url(postgres_url).database
    dump = tmp_path / "stethoscope.dump"

    subprocess.run(
        [bindir / "pg_dump", "-Fc", "-h", socket, "-U", "postgres", "-f", dump, name],
        check=True,
        capture_output=True,
    )
    # An empty database (template0: not even the migrations' tables).
    postgres_server.execute(f"CREATE DATABASE {name}_restored TEMPLATE template0")
    try:
        subprocess.run(
            [
                bindir / "pg_restore",
                "--no-owner",
                "--exit-on-error",
                "-h", socket,
                "-U", "postgres",
                "-d", f"{name}_restored",
                dump,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        restored_url = postgres_server.database_url(f"{name}_restored")
        assert_restored(everything(postgres_url), everything(restored_url))
        assert takes_a_new_reading(restored_url) > max(
            row[0] for row in everything(postgres_url)["readings"]
        )
    finally:
        postgres_server.execute(f"DROP DATABASE {name}_restored WITH (FORCE)")
