"""Whether a server could listen on HOST:PORT now: make run asks before it
starts anything, so that a busy port is one line, not pserve's traceback
after the simulator has begun posting.

    python tools/port_free.py localhost 6543     # exit 0: free

Binds every address HOST resolves to (localhost: 127.0.0.1 and ::1, as
waitress does) with SO_REUSEADDR, as waitress sets it, so that connections
of a server stopped a moment ago (TIME_WAIT) do not count as busy. Exit 1
with one line on stderr when the port is taken or cannot be used, 2 when
PORT is no port number.
"""

import errno
import socket
import sys

USAGE = "usage: port_free.py HOST PORT"


def problem(host: str, port_text: str) -> str | None:
    """Why a server could not listen on ``host``:``port_text``; None if free."""
    if not (port_text.isascii() and port_text.isdigit()) or not (
        1 <= int(port_text) <= 65535
    ):
        return f"PORT={port_text!r} is not a port number (1 to 65535)"
    port = int(port_text)
    try:
        addresses = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror}"
    for family, kind, proto, _, address in addresses:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue  # an address family this machine has not got
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    continue  # no IPv6 here: waitress will not listen there either
                shown = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
                return (
                    f"port {port} is in use on {shown} ({exc.strerror}): stop what "
                    f"listens there or choose another port, e.g. make run "
                    f"PORT={port + 1 if port < 65535 else 8080}"
                )
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    found = problem(*argv)
    if found is None:
        return 0
    print(f"make run: {found}", file=sys.stderr)
    return 2 if found.startswith("PORT=") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
