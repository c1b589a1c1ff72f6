"""Millions of readings into a migrated database quickly, for the benchmarks.

    from bulk_readings import load_readings
    load_readings(url, rows)   # rows: (badge, gateway, received, observed,
                               #        strength, beacons json, fingerprint)

Kept to the time one fill can afford (10 M readings), not to how the
application writes: the readings table's secondary indexes are dropped,
the rows loaded, and the indexes built again after, each in one sort
instead of one B-tree insertion per row and index (on SQLite the three
indexes made executemany fall from ~150,000 to 3,000-7,000 readings/s as
they outgrew the page cache).

The indexes come back exactly as the migrations made them: their
``CREATE INDEX`` statements are read from the database's own catalog
(``sqlite_master.sql``, ``pg_indexes.indexdef``) before they are dropped
and run again after, so an index a later migration adds is rebuilt too,
and nothing the migrations did not create is left behind.

SQLite: ``journal_mode=OFF`` and ``synchronous=OFF`` during the load only
(a crash means filling again), a transaction per ``CHUNK`` rows, then
``journal_mode=WAL`` again (what the application sets) and ``ANALYZE``.
PostgreSQL: the table truncated and loaded by ``COPY ... FREEZE`` in the
same transaction (rows written frozen, so neither the first read nor a
VACUUM rewrites every page to set hint bits), the indexes built with a
1 GB ``maintenance_work_mem``, then ``VACUUM (ANALYZE)``.
"""

import datetime
import itertools
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path

COLUMNS = (
    "badge_id",
    "gateway_id",
    "received_at",
    "observed_at",
    "badge_strength",
    "beacons",
    "fingerprint",
)
CHUNK = 500_000
TABLE = "readings"


def sqlite_time(moment: datetime.datetime) -> str:
    """A UTC timestamp as the application stores it in SQLite (UTCDateTime:
    naive UTC text, SQLAlchemy's format)."""
    moment = moment.astimezone(datetime.UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
        f"{moment.microsecond:06d}"
    )


def _chunks(rows: Iterable[tuple], size: int):
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _progress(label: str, written: int, started: float, last: list[float]) -> None:
    if time.monotonic() - last[0] > 30:
        last[0] = time.monotonic()
        rate = written / (last[0] - started)
        print(f"  {label}: {written:,} readings ({rate:,.0f}/s)", file=sys.stderr)


def sqlite_indexes(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the readings table's own indexes
    (not the primary key's, which has no SQL)."""
    return connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
        (TABLE,),
    ).fetchall()


def load_sqlite(path: Path, rows: Iterable[tuple], label: str = "sqlite") -> int:
    """Rows into an empty, migrated SQLite file's readings table; times as
    sqlite_time, beacons as JSON text. How many were written."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -1000000")  # 1 GB, for the sorts
        indexes = sqlite_indexes(connection)
        for name, _sql in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        insert = (
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})"
        )
        written, started, last = 0, time.monotonic(), [time.monotonic()]
        for chunk in _chunks(rows, CHUNK):
            connection.execute("BEGIN")
            connection.executemany(insert, chunk)
            connection.execute("COMMIT")
            written += len(chunk)
            _progress(label, written, started, last)
        for name, sql in indexes:
            begun = time.monotonic()
            connection.execute(sql)
            print(
                f"  {label}: {name} built in {time.monotonic() - begun:.0f} s",
                file=sys.stderr,
            )
        connection.execute("ANALYZE")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute(f"PRAGMA journal_mode = {mode}")
    finally:
        connection.close()
    return written


def load_postgresql(conninfo: str, rows: Iterable[tuple], label="postgresql") -> int:
    """Rows into a migrated PostgreSQL database's readings table, emptied
    first (TRUNCATE: COPY FREEZE needs it in the same transaction); times as
    aware datetimes or text, beacons as JSON text. How many were written."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=False) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute("SET maintenance_work_mem = '1GB'")
        indexes = connection.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE i.tablename = %s AND NOT x.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) "
            "ORDER BY i.indexname",
            (TABLE,),
        ).fetchall()
        connection.execute(f"TRUNCATE {TABLE}")
        for name, _sql in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        copy_sql = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN WITH (FREEZE)"
        written, started, last = 0, time.monotonic(), [time.monotonic()]
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
                if not written % 100_000:
                    _progress(label, written, started, last)
        for name, sql in indexes:
            begun = time.monotonic()
            connection.execute(sql)
            print(
                f"  {label}: {name} built in {time.monotonic() - begun:.0f} s",
                file=sys.stderr,
            )
        connection.commit()
        connection.autocommit = True
        connection.execute(f"VACUUM (ANALYZE) {TABLE}")
    return written
