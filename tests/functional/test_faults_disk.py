"""SQLite's disk fills up while gateways post: 503, nothing half stored, and
ingest comes back by itself once there is room again.

The disk is filled with ``PRAGMA max_page_count``, set on each connection
the app's pool hands out: past it SQLite fails the write with SQLITE_FULL
("database or disk is full"), the error a full filesystem gives it (an
ENOSPC from a write of the database, its log or a temporary file is
reported as SQLITE_FULL too). A small tmpfs would be a truer disk but needs
root to mount; the pragma runs anywhere the suite runs, and the app meets
the same error either way.

A ledger is kept as gateways would: every reading answered 201 or 409 must
be stored afterwards, and every one answered 503 is posted again once
there is room, as a gateway does after Retry-After.
"""

import collections
import datetime
import itertools
import threading

import pytest
from sqlalchemy import event, select

from stethoscope.ingest.models import Reading
from stethoscope.ingest.schemas import fingerprint
from stethoscope.singletons import DATABASE
from tests.support.servers import ThreadedServer, post_json

GATEWAYS = 4
# Pages of room left when the disk starts to fill: some dozens of readings.
ROOM_PAGES = 6
BATCH = 300


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


class Disk:
    """The room SQLite may use: every connection checked out of the app's
    pool is given the current ``max_page_count``."""

    def __init__(self, engine):
        self.engine = engine
        with engine.connect() as connection:
            self.unlimited = connection.exec_driver_sql(
                "PRAGMA max_page_count"
            ).scalar()
        self.pages = self.unlimited
        event.listen(engine, "checkout", self._limit)

    def _limit(self, dbapi_connection, record, proxy) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {self.pages}")
        cursor.close()

    def used(self) -> int:
        with self.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA page_count").scalar()

    def fill(self, room: int) -> None:
        """Leave ``room`` pages free (SQLite takes no less than it uses)."""
        self.pages = self.used() + room

    def free(self) -> None:
        self.pages = self.unlimited

    def close(self) -> None:
        event.remove(self.engine, "checkout", self._limit)


def live(badge: str, gateway: str, step: int, observed: bool = False) -> dict:
    # A different advertisement at each step (up to 60 x 90 of them).
    beacons = {"b-1": -40 - step % 60, "b-2": -30 - step // 60 % 90}
    item = {"badge_id": badge, "pi_id": gateway, "beacons": beacons}
    if observed:
        item["observed_at"] = datetime.datetime.now(datetime.UTC).isoformat()
    return item


def key(item: dict) -> str:
    return fingerprint(item["badge_id"], item["beacons"])


def assert_unavailable(answer) -> None:
    """The database's 503: JSON, with Retry-After, never a 500."""
    assert answer is not None
    assert answer.status == 503, answer.body
    assert answer.headers["Retry-After"] == "5"
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == "service_unavailable"


def stored(engine) -> dict[str, int]:
    """How many times each fingerprint is stored."""
    with engine.connect() as connection:
        return collections.Counter(connection.scalars(select(Reading.fingerprint)))


def test_a_full_disk_is_503_stores_no_partial_batch_and_recovers(
    make_app, engine, caplog
):
    app = make_app.wsgi()
    disk = Disk(app.registry[DATABASE].engine)
    server = ThreadedServer(app, threads=8)
    ledger: list[tuple[dict, int]] = []
    refused: list[dict] = []
    problems: list[str] = []
    lock = threading.Lock()

    def gateway(number: int) -> None:
        # Two gateways hear each badge: one stores its advertisement, the
        # other meets the claim. Odd gateways take the whole way.
        for step in itertools.count():
            item = live(f"badge-{number % 2}", f"pi-{number}", step, number % 2 == 1)
            answer = post_json(server.port, "/rssi_readings", item)
            with lock:
                if answer is not None and answer.status in (201, 409):
                    ledger.append((item, answer.status))
                elif answer is not None and answer.status == 503:
                    try:
                        assert_unavailable(answer)
                    except AssertionError as exc:
                        problems.append(f"pi-{number}: {exc}")
                    refused.append(item)
                    return
                else:
                    problems.append(f"pi-{number} step {step}: {answer}")
                    return

    try:
        disk.fill(ROOM_PAGES)
        threads = [threading.Thread(target=gateway, args=(n,)) for n in range(GATEWAYS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert problems == []
        # Every gateway posted until the disk refused it.
        assert len(refused) == GATEWAYS
        assert any(status == 201 for _, status in ledger)
        # The operator's log says why.
        assert "database or disk is full" in caplog.text

        # A batch that needs more room than is left: all of it or nothing.
        # Live items go to the group writer, late ones to the request's own
        # transaction: both ways are tried.
        disk.fill(2)
        before = stored(engine)
        hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
        batches = [
            [live(f"batch-{i}", "pi-9", i, observed=True) for i in range(BATCH)],
            [
                {**live(f"late-{i}", "pi-9", i), "observed_at": hour_ago.isoformat()}
                for i in range(BATCH)
            ],
        ]
        for batch in batches:
            assert_unavailable(post_json(server.port, "/rssi_readings", batch))
        assert stored(engine) == before

        # Room again: the same server stores what it refused, and the
        # batches whole (their claims were released: not "duplicate").
        disk.free()
        for item in refused:
            answer = post_json(server.port, "/rssi_readings", item)
            assert answer is not None and answer.status in (201, 409), answer
            ledger.append((item, answer.status))
        for batch in batches:
            answer = post_json(server.port, "/rssi_readings", batch)
            assert answer is not None and answer.status == 200, answer
            assert answer.json()["created"] == BATCH
    finally:
        server.stop()
        disk.close()

    after = stored(engine)
    missing = [item for item, _ in ledger if key(item) not in after]
    assert missing == []
    # Each batch is stored once, all of it.
    for batch in batches:
        assert all(after.get(key(item)) == 1 for item in batch)
