"""A local chat server standing in for a Slack-compatible webhook."""

import http.server
import json
import threading


class Hook:
    """A local chat server: records each JSON body and sets an event."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.events = [threading.Event() for _ in range(4)]
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")
                hook.events[len(hook.bodies) - 1].set()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
