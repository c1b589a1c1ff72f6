"""SQLite faults for tests."""

import contextlib
import sqlite3

from sqlalchemy import event


@contextlib.contextmanager
def failing_checkpoints(engine):
    """Every ``PRAGMA wal_checkpoint`` on ``engine`` fails, as on a disk
    that refuses the copy."""

    def fail(connection, cursor, statement, *_):
        if "wal_checkpoint" in statement:
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", fail)
