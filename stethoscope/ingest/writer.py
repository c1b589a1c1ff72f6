"""Group commit: live originals posted at the same time share one commit.

A stored reading costs a transaction of its own: BEGIN, the insert, COMMIT
and, with SQLite's ``synchronous = FULL`` or PostgreSQL's defaults, an fsync.
Under load those commits queue behind the database's single writer, and
their fixed cost, not the insert, is what limits how many originals a
process can store. ``ReadingWriter.insert`` lets concurrent requests share
the cost without waiting for one another any longer than they would anyway:

* the first request to arrive becomes the *leader*: it inserts the rows of
  every request queued so far in one transaction and commits;
* requests arriving meanwhile queue up and wait; when the leader is done,
  the oldest of them leads the next commit, for everything queued by then.

Nothing waits for a timer: an idle process commits each reading at once,
and a busy one commits as many as arrived during the previous commit. Each
caller returns only after the commit that holds its rows (a 201 still means
committed), with its own ids or with the error of that commit. Rows that
make an insert fail (none should: the view validated them) do not sink the
others: the batch is then written again one request at a time.

On SQLite a leader also keeps the write-ahead log short: SQLite copies the
log into the database by itself inside the commit that takes it past 1,000
pages, and that commit then holds the write turn for the copy and its fsync
while every request of the moment waits (a 130-150 ms stall,
docs/benchmarks.md). Instead, once its commits have written about
``CHECKPOINT_PAGES`` pages, a leader checkpoints after handing over, outside
the turn, while the next leader goes on.

The session machinery (an ORM session, zope.sqlalchemy, the two-phase
commit of ``transaction``) is not used here; a Core connection is all an
insert needs. On PostgreSQL the writer keeps a connection of its own in
autocommit mode: a single INSERT statement is a transaction by itself (all
its rows or none, committed when it returns), so a commit is one round trip
instead of a pool checkout with its pre-ping, BEGIN, INSERT and COMMIT
(490 -> 215 us of CPU for one reading, docs/benchmarks.md). A connection
that fails is dropped; the next commit takes a fresh, pinged one from the
pool. So a reading stored this way is outside the request's
transaction: the service confirms or releases its claim itself.
"""

import contextlib
import threading
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from .models import Reading

# Built once: the table, not the mapped class (an ORM-enabled insert goes
# through the ORM's bulk machinery, which plain rows do not need), and the
# same statement object each time, so SQLAlchemy neither rebuilds nor
# re-keys it per reading; it is compiled once and cached.
_TABLE = Reading.__table__
INSERT_ONE = insert(_TABLE).returning(_TABLE.c.id)
INSERT_MANY = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
INSERT_PLAIN = insert(_TABLE)
_LAST_ID = select(func.max(_TABLE.c.id))
_SQLITE_MAX_ROWID = 2**63 - 1

# Half SQLite's automatic checkpoint (wal_autocheckpoint, 1,000 pages), so
# that the log is copied out by us, between commits, well before SQLite
# would do it inside one.
CHECKPOINT_PAGES = 500


def pages_written(rows: int) -> int:
    """A generous estimate of the log pages a commit of ``rows`` readings
    writes: the table's and each index's pages touched. Measured on the
    readings of 2,400 badges (tools/wal_pages.py): 4.6 pages for one row,
    9.8 for 3, 25 for 10, 107 for 100, 182 for 500."""
    return min(4 + 2 * rows, 250)


def insert_readings(connection, rows: list[dict]) -> list[int]:
    """Insert ``rows`` in the open write transaction; their ids, in order.

    ``connection`` is a Connection or a Session. PostgreSQL returns the ids
    of a many-row insert in order in one statement. SQLite cannot tie a
    RETURNING row to its parameters, so SQLAlchemy would run one INSERT per
    row; but a write transaction holds SQLite's only write lock, and SQLite
    gives a new row the largest rowid plus one (sqlite.org/autoinc.html)
    until the largest possible rowid is taken: the rows of one executemany
    get the ids after the largest, in order.
    """
    if len(rows) == 1:
        return [connection.execute(INSERT_ONE, rows[0]).scalar_one()]
    dialect = getattr(connection, "dialect", None) or connection.get_bind().dialect
    if dialect.name != "sqlite":
        return list(connection.scalars(INSERT_MANY, rows))
    last = connection.scalar(_LAST_ID) or 0
    if last > _SQLITE_MAX_ROWID - len(rows):
        # SQLite picks rowids at random up there: ask for each one.
        return list(connection.scalars(INSERT_MANY, rows))
    connection.execute(INSERT_PLAIN, rows)
    new_last = connection.scalar(_LAST_ID)
    if new_last != last + len(rows):
        # Not what SQLite promises: refuse rather than misreport ids (the
        # transaction is rolled back, the callers hear of an error).
        raise RuntimeError(
            f"readings ids {last + 1}..{new_last} for {len(rows)} new rows"
        )
    return list(range(last + 1, new_last + 1))


@dataclass(eq=False)
class _Request:
    rows: list[dict]
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    done: bool = False
    ids: list[int] | None = None
    error: BaseException | None = None

    def result(self) -> list[int]:
        if self.error is not None:
            raise self.error
        return self.ids


class ReadingWriter:
    """Inserts readings for many threads, committing them in groups."""

    def __init__(
        self,
        engine: Engine,
        *,
        turn=None,
        checkpoint=None,
        max_rows: int = 1000,
        on_commit=None,
    ):
        self.engine = engine
        # Told the rows of each commit (ops.metrics.Metrics.group_commit).
        self.on_commit = on_commit
        # Database.write_turn: on SQLite, other writers of this process
        # (the activity flush) and the writer take turns.
        self.turn = turn if turn is not None else contextlib.nullcontext()
        # Database.checkpoint on SQLite (it logs a failure, never raises);
        # None where there is no log to keep short (PostgreSQL).
        self.checkpoint = checkpoint
        self.max_rows = max_rows
        # Log pages written since the last checkpoint (an estimate).
        self._pages = 0
        # PostgreSQL: rows up to this many go in one INSERT statement, which
        # commits by itself on the writer's own connection. SQLAlchemy
        # sends rows in pages (insertmanyvalues), cut short where their
        # bound parameters would pass its limit: one per column, and one
        # more for the order of the rows.
        dialect = engine.dialect
        self._autocommit_rows = (
            min(
                engine.get_execution_options().get(
                    "insertmanyvalues_page_size", dialect.insertmanyvalues_page_size
                ),
                dialect.insertmanyvalues_max_parameters // (len(_TABLE.columns) + 1),
            )
            if dialect.name == "postgresql"
            else 0
        )
        self._connection = None
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False
        # How many commits and rows so far (the tests read them).
        self.commits = 0
        self.rows = 0

    def insert(self, rows: list[dict]) -> list[int]:
        """Insert ``rows`` and commit; their ids, in order, once committed."""
        request = _Request(rows)
        with self._lock:
            self._queue.append(request)
            if not self._leading:
                self._leading = request.leads = True
        if not request.leads:
            request.ready.wait()
            if request.done:
                return request.result()
        # This thread leads: its own rows are first in the queue.
        try:
            self._write(self._take())
        finally:
            checkpoint_due = self._hand_over()
        if checkpoint_due:
            # Its callers have their answers and the next leader has the
            # turn; only this thread's own caller waits for the copy.
            self.checkpoint()
        return request.result()

    def _take(self) -> list[_Request]:
        with self._lock:
            batch, count = [], 0
            while self._queue and (
                not batch or count + len(self._queue[0].rows) <= self.max_rows
            ):
                batch.append(self._queue.pop(0))
                count += len(batch[-1].rows)
            return batch

    def _hand_over(self) -> bool:
        """Let the next leader go on; True when the log is due a checkpoint."""
        with self._lock:
            # Counted before the next leader starts adding to it.
            due = self.checkpoint is not None and self._pages >= CHECKPOINT_PAGES
            if due:
                self._pages = 0
            if self._queue:
                following = self._queue[0]
                following.leads = True
                following.ready.set()
            else:
                self._leading = False
            return due

    def _write(self, batch: list[_Request]) -> None:
        try:
            ids = self._commit([row for request in batch for row in request.rows])
        except Exception as exc:
            if len(batch) == 1 or _operational(exc):
                self._finish(batch, error=exc)
                return
            # Some request's rows are refused: write each request alone so
            # that only its own caller hears of it.
            for request in batch:
                self._write([request])
            return
        except BaseException as exc:
            self._finish(batch, error=exc)
            raise
        start = 0
        for request in batch:
            request.ids = ids[start : start + len(request.rows)]
            start += len(request.rows)
        self._finish(batch)

    def _commit(self, rows: list[dict]) -> list[int]:
        if len(rows) <= self._autocommit_rows:
            ids = self._insert_alone(rows)
        else:
            with self.turn, self.engine.begin() as connection:
                ids = insert_readings(connection, rows)
        self.commits += 1
        self.rows += len(rows)
        if self.on_commit is not None:
            self.on_commit(len(rows))
        if self.checkpoint is not None:
            self._pages += pages_written(len(rows))
        return ids

    def _insert_alone(self, rows: list[dict]) -> list[int]:
        """One INSERT statement on the writer's own autocommit connection."""
        connection = self._connection
        if connection is None:
            connection = self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
            self._connection = connection
        try:
            return insert_readings(connection, rows)
        except BaseException:
            # Broken, or refused rows: start afresh from the pool next time.
            self._connection = None
            connection.close()
            raise

    def close(self) -> None:
        """Give the writer's own connection back to the pool, once no more
        readings are coming (an app being disposed of)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @staticmethod
    def _finish(batch: list[_Request], error: BaseException | None = None) -> None:
        for request in batch:
            request.error = error
            request.done = True
            request.ready.set()


def _operational(exc: Exception) -> bool:
    """The database's trouble (locked, gone, out of space), not the rows'."""
    return isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError
    ) or getattr(exc, "connection_invalidated", False)
