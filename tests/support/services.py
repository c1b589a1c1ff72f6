"""Private redis-server and PostgreSQL instances for the tests.

Each test session starts its own servers on Unix sockets in a temporary
directory, so tests never touch a server that something else uses and run
the same on a fresh machine (make test installs the server packages).
Readiness is awaited by polling the server itself, with a deadline.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


def _wait_until(ready, what: str, process: subprocess.Popen, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if ready():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready in {timeout} s")
        time.sleep(0.02)


class RedisServer:
    """A redis-server of our own, on a Unix socket, keeping nothing on disk."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.socket = self.directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.process = subprocess.Popen(
            [
                executable,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        _wait_until(client.ping, "redis-server", self.process)
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)


def _postgres_bindir() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError(
            "no PostgreSQL server binaries (initdb) found; make test installs them"
        )
    return Path(candidates[-1]).parent


class PostgresServer:
    """A PostgreSQL cluster of our own: initdb in a temporary directory.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres``
    user that the Debian package creates. Durability is switched off: these
    databases live for one test session.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.process: subprocess.Popen | None = None
        self.url = f"postgresql+psycopg://postgres@/postgres?host={self.sockets}"
        self.dsn = f"host={self.sockets} user=postgres dbname=postgres"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def start(self) -> "PostgresServer":
        bindir = _postgres_bindir()
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            server_user = pwd.getpwnam("postgres")
            for path in (self.directory, self.sockets):
                os.chown(path, server_user.pw_uid, server_user.pw_gid)
        subprocess.run(
            self._as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data),
                    "-U", "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.process = subprocess.Popen(
            self._as_server_user(
                [
                    str(bindir / "postgres"),
                    "-D", str(self.data),
                    "-k", str(self.sockets),
                    "-c", "listen_addresses=",
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                    "-c", "max_connections=200",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        _wait_until(self._ready, "postgres", self.process)
        return self

    def _ready(self) -> bool:
        with psycopg.connect(self.dsn, connect_timeout=1):
            return True

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(sql)

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@/{name}?host={self.sockets}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT is PostgreSQL's "fast shutdown".
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(timeout=30)
        self.process = None


def private_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
