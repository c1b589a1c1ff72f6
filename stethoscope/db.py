"""Database plumbing: the declarative Base, engines, ``request.db``.

SQLite is the embedded default and PostgreSQL the production database; both
run the same code. The traps this module designs around:

* SQLite allows one writer. A deferred transaction that reads and then writes
  fails at once with "database is locked" when another writer got in between,
  so write sessions (unsafe HTTP methods, scripts) begin ``IMMEDIATE`` and
  wait up to ``busy_timeout`` for the lock; read sessions stay deferred so the
  dashboard never queues behind ingest. A lock that still times out is marked
  retryable for pyramid_retry.
* A database that is down must give a quick 503, never a hang: connection and
  pool timeouts are bounded (see stethoscope.ops.errors for the 503).
* Timestamps are stored and returned as timezone-aware UTC on both databases.
"""

import collections
import contextlib
import datetime
import logging
import sqlite3
import threading
import zlib

import transaction
import zope.sqlalchemy
from pyramid_retry import mark_error_retryable
from sqlalchemy import JSON, DateTime, MetaData, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from .singletons import DATABASE

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(datetime.UTC)
        # SQLite keeps the text it is given: store naive UTC text so that
        # ordering and comparison of the strings match time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime.datetime: UTCDateTime}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _sqlite_lock_is_retryable(context):
    original = context.original_exception
    if (
        isinstance(original, sqlite3.OperationalError)
        and "locked" in str(original)
        and context.sqlalchemy_exception is not None
    ):
        mark_error_retryable(context.sqlalchemy_exception)


def make_engine(settings) -> Engine:
    """Create the engine for ``sqlalchemy.url`` with bounded waits."""
    url = settings["sqlalchemy.url"]
    if url.startswith("sqlite"):
        return _make_sqlite_engine(url, settings)
    kwargs = {
        "pool_pre_ping": True,
        "pool_size": settings["stethoscope.db.pool_size"],
        "max_overflow": settings["stethoscope.db.pool_size"],
        "pool_timeout": settings["stethoscope.db.pool_timeout_s"],
    }
    if url.startswith("postgresql"):
        kwargs["connect_args"] = postgresql_connect_args(settings)
    return create_engine(url, **kwargs)


def postgresql_connect_args(settings) -> dict:
    """libpq's connection parameters that bound every wait on the server.

    ``connect_timeout`` bounds connecting. Once connected, a server host that
    goes silent (its network gone, its machine down) leaves a request
    waiting for an answer until the kernel gives up, ~15 minutes: so data
    we sent may stay unacknowledged for ``tcp_timeout_s`` at most
    (``tcp_user_timeout``), and while we wait for an answer the server's
    host must acknowledge TCP keepalives within about as long. A live
    server ends a statement that waits ``lock_timeout_ms`` for a lock or runs
    ``statement_timeout_ms`` (its error is a 503). A server that stops
    answering on a host that still acknowledges (a process stalled on its
    disk) is bounded by none of these: psycopg has no client-side deadline.
    """
    timeout_s = settings["stethoscope.db.tcp_timeout_s"]
    options = " ".join(
        f"-c {name}={settings[key]}"
        for name, key in (
            ("lock_timeout", "stethoscope.db.lock_timeout_ms"),
            ("statement_timeout", "stethoscope.db.statement_timeout_ms"),
        )
    )
    return {
        "options": options,
        "connect_timeout": settings["stethoscope.db.connect_timeout_s"],
        "tcp_user_timeout": timeout_s * 1000,
        "keepalives": 1,
        "keepalives_idle": max(1, timeout_s // 2),
        "keepalives_interval": max(1, timeout_s // 6),
        "keepalives_count": 3,
    }


def _make_sqlite_engine(url, settings) -> Engine:
    busy_timeout = settings["stethoscope.sqlite.busy_timeout_ms"]
    synchronous = settings["stethoscope.sqlite.synchronous"].upper()
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout / 1000, "check_same_thread": False},
        pool_size=settings["stethoscope.db.pool_size"],
        max_overflow=settings["stethoscope.db.pool_size"],
        pool_timeout=settings["stethoscope.db.pool_timeout_s"],
    )

    # SQLAlchemy's recipe for pysqlite: take transaction control away from
    # the driver so that we can say how each transaction begins.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine, "handle_error", _sqlite_lock_is_retryable)
    return engine


class FairLock:
    """A lock granted in the order it was asked for.

    SQLite lets one writer in at a time, and a writer that finds the
    database locked sleeps in growing steps (1, 2, 5 … 100 ms) before it
    tries again: a thread that writes transaction after transaction (the
    activity flush) keeps getting back in first, and the readings wait for
    all of it. Writers of this process that take turns here first meet the
    database free, and in order.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._held = False

    def __enter__(self):
        with self._condition:
            me = object()
            self._queue.append(me)
            while self._held or self._queue[0] is not me:
                self._condition.wait()
            self._queue.popleft()
            self._held = True
        return self

    def __exit__(self, *exc_info):
        with self._condition:
            self._held = False
            self._condition.notify_all()


def upsert_insert(session: Session, table):
    """An INSERT into ``table`` for the session's database that can take
    ``on_conflict_do_nothing`` / ``on_conflict_do_update`` (SQLite's and
    PostgreSQL's own constructs)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class Database:
    """The engine and its session factories: read or write, joined to the
    thread's transaction manager (requests, scripts) or on their own."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._closers = []
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The group writer and the activity flush take turns here on SQLite
        # (one writer at a time anyway); PostgreSQL needs no turns.
        self.write_turn = FairLock() if self.is_sqlite else contextlib.nullcontext()
        engines = {
            False: engine,
            True: engine.execution_options(sqlite_begin="IMMEDIATE"),
        }
        # Group commits of readings (ingest/writer.py) begin IMMEDIATE too.
        self.write_engine = engines[True]
        self._plain = {
            write: sessionmaker(bind=bound, expire_on_commit=False)
            for write, bound in engines.items()
        }
        # Registered once per factory: zope.sqlalchemy.register on each new
        # session attaches its event listeners anew, which cost a stored
        # reading about 6 % of the server's CPU (docs/benchmarks.md).
        self._joined = {}
        for write, bound in engines.items():
            factory = sessionmaker(bind=bound, expire_on_commit=False)
            zope.sqlalchemy.register(factory, transaction_manager=transaction.manager)
            self._joined[write] = factory

    def on_dispose(self, close) -> None:
        """Have ``dispose`` call ``close()`` first (a connection held open)."""
        self._closers.append(close)

    def dispose(self) -> None:
        """Close every connection: those held by their users, then the pool's
        (an app taken down: scripts, tests)."""
        for close in self._closers:
            close()
        self.engine.dispose()

    def checkpoint(self) -> None:
        """On SQLite, copy the write-ahead log into the database now, outside
        any write turn (a PASSIVE checkpoint: writers go on meanwhile).

        SQLite checkpoints by itself in the commit that takes the log past
        1,000 pages, which then holds the write turn for the copy and its
        fsync, and every writer waiting for a turn waits for that too:
        100-200 ms during an activity flush, which writes most of the
        pages (docs/benchmarks.md). Writers that write much call this
        between their transactions, so that the log stays short of it.

        Never raises: a checkpoint that fails is logged, and SQLite then
        checkpoints in a commit as it would anyway; what the caller
        committed stays committed.
        """
        if not self.is_sqlite:
            return
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.warning(
                "could not checkpoint SQLite's log; SQLite will, in a commit",
                exc_info=True,
            )

    def session(self, *, write: bool) -> Session:
        """A new session outside any request (background flushes)."""
        return self._plain[write]()

    def tm_session(self, transaction_manager, *, write: bool) -> Session:
        """A session joined to ``transaction_manager`` (pyramid_tm's request.tm)."""
        if transaction_manager is transaction.manager:
            return self._joined[write]()
        session = self._plain[write]()
        zope.sqlalchemy.register(session, transaction_manager=transaction_manager)
        return session


def _request_db(request) -> Session:
    database = request.registry[DATABASE]
    session = database.tm_session(request.tm, write=request.method in UNSAFE_METHODS)
    request.add_finished_callback(lambda request: session.close())
    request.stethoscope_db_opened = True
    return session


def request_db_opened(request) -> bool:
    """Whether this request has its session already (a SQLite write session
    holds the database's write lock until the request's commit)."""
    return getattr(request, "stethoscope_db_opened", False)


def includeme(config):
    database = Database(make_engine(config.registry.settings))
    config.registry[DATABASE] = database
    config.add_request_method(_request_db, "db", reify=True)


def advisory_lock(session: Session, lock_class: int, names) -> None:
    """Serialise a change with others touching any of ``names`` (PostgreSQL).

    One ``pg_advisory_xact_lock(lock_class, key)`` per name, held to the end
    of the transaction; ``lock_class`` keeps features' keys apart (training
    runs, model versions, alerts). Keys are taken sorted, so two transactions
    locking overlapping sets take them in the same order and cannot deadlock.
    SQLite's write transactions are serialised already: nothing to do there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({_lock_key(name) for name in names}):
        session.execute(select(func.pg_advisory_xact_lock(lock_class, key)))


def _lock_key(name: str) -> int:
    # pg_advisory_xact_lock(int, int) takes signed 32-bit keys.
    key = zlib.crc32(name.encode())
    return key - (1 << 32) if key >= 1 << 31 else key
