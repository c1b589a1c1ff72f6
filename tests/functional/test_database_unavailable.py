"""A database that is down or locked answers 503 + Retry-After, quickly."""

import os
import shutil
import signal
import sqlite3
import subprocess
import threading

import psycopg
import pytest

from tests.support.services import PostgresServer, private_directory
from tests.support.waiting import wait_for

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30}}


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


def test_postgres_down_is_503(make_app, tmp_path):
    # A socket directory with no server in it: connecting fails at once.
    app = make_app(
        **{"sqlalchemy.url": f"postgresql+psycopg://postgres@/x?host={tmp_path}"}
    )
    response = app.post_json("/rssi_readings", READING, status=503)
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"] == "service_unavailable"
    health = app.get("/health", status=503).json
    assert health["database"] == "unavailable"


def test_sqlite_locked_is_retried_then_503_and_the_claim_released(
    make_app, sqlite_url, caplog
):
    app = make_app(
        **{"sqlalchemy.url": sqlite_url, "stethoscope.sqlite.busy_timeout_ms": "20"}
    )
    path = sqlite_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        response = app.post_json("/rssi_readings", READING, status=503)
        assert response.headers["Retry-After"] == "5"
        # pyramid_retry tried every attempt; only the last one is logged.
        assert caplog.text.count("database unavailable") == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The gateway retries after Retry-After: the reading is stored, not
    # refused as a duplicate of the failed attempt.
    app.post_json("/rssi_readings", READING, status=201)
    reader = sqlite3.connect(path)
    assert reader.execute("select count(*) from readings").fetchone() == (1,)
    reader.close()


def test_reads_are_not_blocked_by_a_writer(testapp, sqlite_url):
    # WAL and deferred read transactions: the dashboard reads while another
    # writer holds the lock.
    testapp.post_json("/rssi_readings", READING, status=201)
    blocker = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None
    )
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("DELETE FROM readings")
    try:
        assert len(testapp.get("/rssi_readings").json["readings"]) == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_a_postgres_table_locked_is_503_and_the_claim_released(make_app, postgres_url):
    """A migration (or anyone) holding the readings table: the insert gives
    up after lock_timeout_ms and the gateway hears 503, instead of waiting
    for as long as the lock is held."""
    app = make_app(
        **{"sqlalchemy.url": postgres_url, "stethoscope.db.lock_timeout_ms": "100"}
    )
    blocker = psycopg.connect(postgres_url.replace("+psycopg", ""))
    try:
        blocker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        response = app.post_json("/rssi_readings", READING, status=503)
        assert response.headers["Retry-After"] == "5"
    finally:
        blocker.rollback()
        blocker.close()
    app.post_json("/rssi_readings", READING, status=201)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, to stall."""
    server = PostgresServer(private_directory("stethoscope-pg-")).start()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


def stall(server, stop: bool) -> None:
    """Stop (or continue) the server: the postmaster and every backend (each
    in a session of its own), and, continuing, runuser too, which stops
    itself when its child stops (as su does, for job control)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(postmaster)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    family = [postmaster, *map(int, children)]
    if stop:
        for pid in family:
            os.kill(pid, signal.SIGSTOP)
    else:
        for pid in [*reversed(family), server.process.pid]:
            os.kill(pid, signal.SIGCONT)


def probes() -> int:
    return sum(t.name == "stethoscope-health-probe" for t in threading.enumerate())


def test_health_answers_while_postgres_is_stalled(make_app, own_postgres):
    """A server that stops answering on a live host (SIGSTOP here: a process
    stalled on its disk) ends no wait by itself: /health answers 503 after
    its own deadline, with one probe out however often it is asked."""
    app = make_app(
        **{"sqlalchemy.url": own_postgres.url, "stethoscope.health.timeout_ms": "200"}
    )
    assert app.get("/health").json["database"] == "ok"
    stall(own_postgres, True)
    try:
        for _ in range(3):
            health = app.get("/health", status=503)
            assert health.json["database"] == "unavailable"
            assert health.headers["Retry-After"] == "5"
        assert probes() == 1
    finally:
        stall(own_postgres, False)
    wait_for(lambda: probes() == 0, "the stalled probe to return")
    assert app.get("/health").json["database"] == "ok"
