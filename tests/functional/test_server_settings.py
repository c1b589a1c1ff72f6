"""The waitress settings we ship serve a whole fleet of gateways at once.

Every gateway keeps its connection open between posts. waitress stops
accepting connections at ``connection_limit`` (100 by default) and leaves
the next ones waiting, unanswered, until another closes: a gateway would
hang. These tests serve the app with each ini file's ``[server:main]`` and
post from more gateways than that default, all connected at once.
"""

import configparser
import socket
from pathlib import Path

import orjson
import pytest

from tests.support.servers import ThreadedServer

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS = 150


def server_settings(ini: str) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / ini)
    settings = dict(parser["server:main"])
    del settings["use"], settings["listen"]
    return settings


@pytest.fixture
def serve(make_app):
    """Serve the app with ``settings`` on a free port; stopped afterwards."""
    servers = []

    def start(settings: dict) -> int:
        servers.append(ThreadedServer(make_app.wsgi(), **settings))
        return servers[-1].port

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_every_gateway_keeping_its_connection_open_is_answered(serve, ini):
    settings = server_settings(ini)
    assert int(settings["connection_limit"]) > GATEWAYS
    port = serve(settings)
    connections = []
    try:
        # All connected before any posts: none has closed to make room.
        for _ in range(GATEWAYS):
            connections.append(socket.create_connection(("127.0.0.1", port), 10))
        for n, connection in enumerate(connections):
            body = orjson.dumps(
                {"badge_id": f"B{n}", "pi_id": f"G{n}", "beacons": {"a": -40}}
            )
            connection.sendall(
                b"POST /rssi_readings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
        # Each read waits at most the sockets' 10-s timeout.
        status_lines = [c.makefile("rb").readline() for c in connections]
    finally:
        for connection in connections:
            connection.close()
    assert [line.split()[1] for line in status_lines] == [b"201"] * GATEWAYS
