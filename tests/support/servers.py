"""A WSGI app served by a real waitress on a free port of 127.0.0.1, and a
gateway's post to it, timed."""

import http.client
import threading
import time
from dataclasses import dataclass

import orjson
import waitress


class ThreadedServer:
    """waitress serving ``app`` from a thread of its own until ``stop``."""

    def __init__(self, app, **settings):
        self.server = waitress.create_server(app, host="127.0.0.1", port=0, **settings)
        self.thread = threading.Thread(
            target=self.server.run, name="waitress", daemon=True
        )
        self.thread.start()
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        server = self.server

        def close_all():
            # Runs in the server's own loop, which then finds nothing left to
            # serve and returns; closing sockets from this thread would race it.
            for dispatcher in list(server._map.values()):
                if dispatcher is not server and dispatcher is not server.trigger:
                    dispatcher.close()
            server.close()

        server.trigger.pull_trigger(close_all)
        self.thread.join(timeout=10)
        server.task_dispatcher.shutdown(timeout=5)
        assert not self.thread.is_alive(), "waitress did not stop"


@dataclass(frozen=True)
class Answer:
    """A server's answer to one request, and how long it took to come."""

    status: int
    headers: dict[str, str]
    body: bytes
    # From sending the request to the last byte of the answer read.
    seconds: float

    def json(self):
        return orjson.loads(self.body)


def post_json(port: int, path: str, payload, timeout: float = 30.0) -> Answer | None:
    """POST ``payload`` as JSON to 127.0.0.1:``port``; None when no answer
    came (the server is gone, or said nothing within ``timeout``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.perf_counter()
    try:
        connection.request(
            "POST", path, orjson.dumps(payload), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        body = response.read()
        return Answer(
            response.status,
            dict(response.getheaders()),
            body,
            time.perf_counter() - start,
        )
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
