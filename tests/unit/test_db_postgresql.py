"""The PostgreSQL engine's connections bound every wait on the server."""

import socket
import threading

from stethoscope.config import parse_settings
from stethoscope.db import make_engine


class TcpToUnix:
    """Accepts TCP connections on 127.0.0.1 and relays each to a Unix socket
    (the private PostgreSQL listens on one only), so that the application's
    connection is a TCP one, as it is to a database on another host."""

    def __init__(self, path: str):
        self.path = path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.socket(socket.AF_UNIX)
            server.connect(self.path)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pipe, args=(source, target), daemon=True
                ).start()

    @staticmethod
    def _pipe(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()

    def close(self):
        self.listener.close()
        for each in self.sockets:
            each.close()


def test_a_silent_database_host_is_given_up_on(postgres_server, tmp_path):
    """What reaches the kernel for the application's connection: data left
    unacknowledged for 10 s (``tcp_timeout_s``) ends the connection, and so
    do keepalives unanswered while we wait for a reply."""
    relay = TcpToUnix(str(postgres_server.sockets / ".s.PGSQL.5432"))
    settings = parse_settings(
        {
            "sqlalchemy.url": (
                f"postgresql+psycopg://postgres@127.0.0.1:{relay.port}/postgres"
            ),
            "stethoscope.secret": "test-secret-of-at-least-thirty-two-characters",
            "stethoscope.model_dir": str(tmp_path / "models"),
        }
    )
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            fd = connection.connection.dbapi_connection.pgconn.socket
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as tcp:
                options = {
                    name: tcp.getsockopt(level, option)
                    for name, level, option in [
                        (
                            "user timeout ms",
                            socket.IPPROTO_TCP,
                            socket.TCP_USER_TIMEOUT,
                        ),
                        ("keepalive", socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        ("idle s", socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        ("interval s", socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                        ("probes", socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    ]
                }
    finally:
        engine.dispose()
        relay.close()
    assert options == {
        "user timeout ms": 10_000,
        "keepalive": 1,
        "idle s": 5,
        "interval s": 1,
        "probes": 3,
    }
