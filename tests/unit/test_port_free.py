"""tools/port_free.py, which make run asks before it starts anything."""

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "port_free.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("port_free", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *argv], capture_output=True, text=True
    )


@pytest.fixture
def listening():
    """A port something listens on (as a server left running would)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_free_port_passes_silently():
    result = check("localhost", str(free_port()))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_busy_port_is_one_line(listening):
    result = check("localhost", str(listening))

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"make run: port {listening} is in use on 127.0.0.1 (Address already "
        f"in use): stop what listens there or choose another port, e.g. make "
        f"run PORT={listening + 1}\n"
    )


def test_a_port_closed_a_moment_ago_is_free():
    # Its connections linger in TIME_WAIT. Waitress listens with
    # SO_REUSEADDR, as this server does (Linux lets a port in TIME_WAIT be
    # bound again when both sockets set it).
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()
        client.close()
    assert load_tool().problem("localhost", str(port)) is None


@pytest.mark.parametrize("port", ["", "http", "0", "65536", "-1", "8080x", "٨٠"])
def test_what_is_no_port_number(port):
    result = check("localhost", port)
    assert result.returncode == 2
    assert result.stderr == (
        f"make run: PORT={port!r} is not a port number (1 to 65535)\n"
    )


def test_usage():
    result = check("localhost")
    assert (result.returncode, result.stderr) == (2, "usage: port_free.py HOST PORT\n")


def test_a_host_that_does_not_resolve():
    problem = load_tool().problem("no-such-host.invalid", "6543")
    assert problem.startswith("cannot resolve no-such-host.invalid")
