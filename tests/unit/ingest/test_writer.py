"""The group writer on a real database: grouped commits, ids, failures."""

import datetime
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import OperationalError

from stethoscope.config import parse_settings
from stethoscope.db import Database, make_engine
from stethoscope.ingest import writer as writer_module
from stethoscope.ingest.models import Reading
from stethoscope.ingest.writer import ReadingWriter, insert_readings
from tests.support.postgresql import drop_other_connections
from tests.support.sqlite import failing_checkpoints
from tests.support.waiting import wait_for

NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)


def row(badge_id: str, beacons=None) -> dict:
    return {
        "badge_id": badge_id,
        "gateway_id": "G1",
        "received_at": NOW,
        "observed_at": NOW,
        "badge_strength": None,
        "beacons": beacons if beacons is not None else {"a": -40},
        "fingerprint": badge_id.ljust(32, "0"),
    }


@pytest.fixture
def database(app_settings):
    database = Database(make_engine(parse_settings(app_settings)))
    yield database
    database.engine.dispose()


@pytest.fixture
def make_writer(database):
    """Writers on the test's database; their connections closed after."""
    writers = []

    def make(**options):
        writers.append(ReadingWriter(database.write_engine, **options))
        return writers[-1]

    yield make
    for writer in writers:
        writer.close()


@pytest.fixture
def writer(make_writer):
    return make_writer()


def stored(database) -> dict[int, str]:
    with database.engine.connect() as connection:
        return dict(connection.execute(select(Reading.id, Reading.badge_id)).all())


def sqlite_only(database, why: str) -> None:
    if not database.is_sqlite:
        pytest.skip(why)


def postgresql_only(database) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL's single-statement commits")


def on_insert(engine, action):
    """Call ``action()`` before each INSERT the writer sends (a commit on
    SQLite ends a transaction around it; on PostgreSQL it commits itself)."""

    def before(connection, cursor, statement, *_):
        if statement.startswith("INSERT"):
            action()

    event.listen(engine, "before_cursor_execute", before)
    return lambda: event.remove(engine, "before_cursor_execute", before)


class Gate:
    """Holds the first commit until opened, so that others queue behind it."""

    def __init__(self, engine):
        self.opened = threading.Event()
        self.held = threading.Event()
        self.remove = on_insert(engine, self.commit)

    def commit(self):
        if not self.held.is_set():
            self.held.set()
            assert self.opened.wait(10), "the gate was never opened"


def in_threads(function, arguments) -> list:
    results = [None] * len(arguments)

    def run(index, argument):
        try:
            results[index] = function(argument)
        except Exception as exc:
            results[index] = exc

    threads = [
        threading.Thread(target=run, args=(index, argument))
        for index, argument in enumerate(arguments)
    ]
    for thread in threads:
        thread.start()
    return threads, results


def test_an_insert_is_committed_before_it_returns(database, writer):
    ids = writer.insert([row("B1"), row("B2")])
    assert stored(database) == {ids[0]: "B1", ids[1]: "B2"}
    assert writer.commits == 1


def queued_behind_a_commit(database, writer, requests) -> tuple[list, list]:
    """Insert ``[row("B0")]`` and, while its commit is held, ``requests``
    from threads of their own; let the commit go once all have queued.
    The results (ids or the exception) of the first and of ``requests``."""
    gate = Gate(database.engine)
    try:
        first, first_result = in_threads(writer.insert, [[row("B0")]])
        wait_for(gate.held.is_set, "the first commit to start")
        others, results = in_threads(writer.insert, requests)
        wait_for(lambda: len(writer._queue) == len(requests), "requests to queue")
        gate.opened.set()
        for thread in first + others:
            thread.join(10)
    finally:
        gate.remove()
    return first_result, results


def test_requests_arriving_during_a_commit_share_the_next_one(database, writer):
    badges = [[row(f"B{n}"), row(f"B{n}x")] for n in range(1, 9)]
    first_result, results = queued_behind_a_commit(database, writer, badges)
    assert writer.commits == 2  # the first alone, then the eight together
    rows = stored(database)
    assert len(rows) == 17
    # Each caller got the ids of its own rows, in its order.
    for request, ids in zip(badges, results, strict=True):
        assert [rows[i] for i in ids] == [r["badge_id"] for r in request]
    assert rows[first_result[0][0]] == "B0"


def test_a_failed_commit_fails_its_callers_and_the_next_ones_go_on(database, writer):
    failures = [OperationalError("INSERT", {}, Exception("disk I/O error"))]

    def fail_once():
        if failures:
            raise failures.pop()

    remove = on_insert(database.engine, fail_once)
    try:
        with pytest.raises(OperationalError):
            writer.insert([row("B1")])
        ids = writer.insert([row("B2")])
    finally:
        remove()
    assert stored(database) == {ids[0]: "B2"}


def test_rows_the_database_refuses_fail_their_own_caller_only(database, writer):
    # A set is not JSON: the second request's insert cannot be written.
    requests = [[row("B1")], [row("B2", beacons={"a": {1}})], [row("B3")]]
    _, results = queued_behind_a_commit(database, writer, requests)
    assert isinstance(results[1], Exception), results
    rows = stored(database)
    assert sorted(rows.values()) == ["B0", "B1", "B3"], results
    assert [rows[results[0][0]], rows[results[2][0]]] == ["B1", "B3"]


def test_many_rows_get_their_own_ids_in_order(database):
    rows = [row(f"B{n}") for n in range(300)]
    with database.write_engine.begin() as connection:
        connection.execute(insert(Reading), [row("before")])
        ids = insert_readings(connection, rows)
    stored_rows = stored(database)
    assert [stored_rows[i] for i in ids] == [r["badge_id"] for r in rows]


def test_near_the_largest_rowid_sqlite_ids_are_asked_for(database):
    """Up there SQLite picks rowids at random: the ids come from RETURNING."""
    sqlite_only(database, "SQLite's rowid rule")
    with database.write_engine.begin() as connection:
        connection.execute(insert(Reading), [{**row("top"), "id": 2**63 - 2}])
        rows = [row(f"B{n}") for n in range(5)]
        ids = insert_readings(connection, rows)
    stored_rows = stored(database)
    assert [stored_rows[i] for i in ids] == [r["badge_id"] for r in rows]
    assert len(set(ids)) == 5


def test_the_writer_keeps_sqlites_log_short(database, make_writer):
    """SQLite would copy its log into the database inside the commit that
    takes it past 1,000 pages, holding the write turn for the copy; the
    writer checkpoints after its commits instead, so the log never gets
    there."""
    sqlite_only(database, "SQLite's write-ahead log")
    writer = make_writer(turn=database.write_turn, checkpoint=database.checkpoint)
    log = Path(database.engine.url.database + "-wal")
    for n in range(150):
        writer.insert([row(f"B{n:03}-{m}") for m in range(10)])
    with database.engine.connect() as connection:
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
        # Read while a connection is open: the last one to close
        # checkpoints and removes the log.
        log_size = log.stat().st_size
    assert len(stored(database)) == 1500
    # Without the writer's checkpoints: just over 1,000 pages.
    assert log_size < writer_module.CHECKPOINT_PAGES * page_size


def test_a_checkpoint_holds_up_no_other_writer(database, make_writer, monkeypatch):
    """The leader checkpoints after handing over: the next commits go on."""
    monkeypatch.setattr(writer_module, "CHECKPOINT_PAGES", 1)  # after each commit
    started, finish = threading.Event(), threading.Event()

    def checkpoint():
        if not started.is_set():  # the first one takes its time
            started.set()
            assert finish.wait(10), "the checkpoint was never let finish"

    writer = make_writer(turn=database.write_turn, checkpoint=checkpoint)
    threads, results = in_threads(writer.insert, [[row("B1"), row("B2")]])
    wait_for(started.is_set, "the checkpoint to start")
    try:
        # Committed and answered while the checkpoint is still going on.
        ids = writer.insert([row("later")])
        assert stored(database)[ids[0]] == "later"
        assert results == [None]
    finally:
        finish.set()
        threads[0].join(10)
    rows = stored(database)
    assert [rows[i] for i in results[0]] == ["B1", "B2"]


def test_a_failed_checkpoint_fails_no_insert(
    database, make_writer, monkeypatch, caplog
):
    sqlite_only(database, "SQLite's write-ahead log")
    monkeypatch.setattr(writer_module, "CHECKPOINT_PAGES", 1)
    writer = make_writer(checkpoint=database.checkpoint)
    with failing_checkpoints(database.engine):
        ids = writer.insert([row("B1")]) + writer.insert([row("B2")])
    assert sorted(stored(database).items()) == list(zip(ids, ["B1", "B2"], strict=True))
    assert "could not checkpoint" in caplog.text


def test_on_postgresql_each_insert_commits_by_itself_on_one_connection(
    database, writer
):
    postgresql_only(database)
    checkouts, commits = [], []

    def checkout(*_):
        checkouts.append(1)

    event.listen(database.engine.pool, "checkout", checkout)
    event.listen(database.engine, "commit", lambda _: commits.append(1))
    ids = [writer.insert([row(f"B{n}"), row(f"B{n}x")]) for n in range(5)]
    event.remove(database.engine.pool, "checkout", checkout)
    # Each is committed when it returns (read from another connection).
    rows = stored(database)
    assert [[rows[i] for i in pair] for pair in ids] == [
        [f"B{n}", f"B{n}x"] for n in range(5)
    ]
    # One connection kept, and no transaction around the statements.
    assert len(checkouts) == 1
    assert commits == []


def test_more_rows_than_one_statement_takes_share_a_transaction(database):
    postgresql_only(database)
    # SQLAlchemy sends rows in pages of insertmanyvalues_page_size (1,000):
    # more than a page are several statements, which must commit together.
    engine = database.write_engine.execution_options(insertmanyvalues_page_size=2)
    writer = ReadingWriter(engine)
    commits = []
    event.listen(database.engine, "commit", lambda _: commits.append(1))
    try:
        two = writer.insert([row("B0"), row("B1")])
        assert commits == []  # one statement, committed by itself
        three = writer.insert([row(f"B{n}") for n in range(2, 5)])
        assert commits == [1]
    finally:
        writer.close()
    rows = stored(database)
    assert [rows[i] for i in two + three] == [f"B{n}" for n in range(5)]


def test_a_lost_connection_fails_one_commit_and_the_next_gets_a_new_one(
    database, writer
):
    postgresql_only(database)
    writer.insert([row("B1")])
    drop_other_connections(database.engine)  # the writer's among them
    with pytest.raises(OperationalError):
        writer.insert([row("B2")])
    ids = writer.insert([row("B3")])
    assert sorted(stored(database).values()) == ["B1", "B3"]
    assert stored(database)[ids[0]] == "B3"


def test_a_group_the_server_refuses_stores_none_of_its_rows(database, writer):
    """On PostgreSQL a group is one statement that commits by itself: when
    the server refuses one of its rows, none is stored, so writing the
    requests again one by one stores each good row once."""
    postgresql_only(database)
    out_of_range = {**row("B2"), "badge_strength": 100_000}  # a smallint
    requests = [[row("B1")], [out_of_range], [row("B3")]]
    _, results = queued_behind_a_commit(database, writer, requests)
    assert isinstance(results[1], Exception), results
    assert sorted(stored(database).values()) == ["B0", "B1", "B3"]


def test_ids_sqlite_did_not_give_as_promised_are_refused(database):
    """Something else inserting rows in the same statement (a trigger) breaks
    the rule the ids are derived from: the insert fails and stores nothing,
    rather than report ids that are not the rows'."""
    sqlite_only(database, "SQLite's rowid rule")
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER echo AFTER INSERT ON readings"
            " WHEN NEW.badge_id = 'B1' BEGIN"
            " INSERT INTO readings (badge_id, gateway_id, received_at,"
            " observed_at, beacons, fingerprint) SELECT 'echo', gateway_id,"
            " received_at, observed_at, beacons, fingerprint"
            " FROM readings WHERE id = NEW.id; END"
        )
    with (
        pytest.raises(RuntimeError, match="for 3 new rows"),
        database.write_engine.begin() as connection,
    ):
        insert_readings(connection, [row("B0"), row("B1"), row("B2")])
    assert stored(database) == {}
