"""Messages to a chat webhook: alerts that open, errors nobody expected.

One notifier for every sender (alerts, ops' unexpected errors), so that
there is one way a message leaves the process: ``{"text": …}`` (Slack's
incoming webhook form, which Mattermost, Rocket.Chat and Teams'
Slack-compatible hooks take too), from a thread of its own with a short
timeout. A slow or failing chat server costs the sender nothing; a failure
is logged, never raised.
"""

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Sequence

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 2.0


class WebhookNotifier:
    """Posts ``{"text": …}`` to ``url`` per message (nothing when None).

    ``name`` says what the messages are about in the log (``alert``:
    "alert webhook failed: …").
    """

    def __init__(
        self,
        url: str | None,
        timeout: float = WEBHOOK_TIMEOUT_SECONDS,
        name: str = "alert",
    ):
        self.url = url
        self.timeout = timeout
        self.name = name
        self._lock = threading.Lock()
        self._sending: set[threading.Thread] = set()

    def notify(self, texts: Sequence[str]) -> threading.Thread | None:
        """Send ``texts`` from a background thread (returned, for tests to
        join); None when there is nothing to send or nowhere to send it."""
        if not self.url or not texts:
            return None
        thread = threading.Thread(
            target=self._send_all, args=(list(texts),), name=f"{self.name}-webhook"
        )
        thread.daemon = True
        with self._lock:
            self._sending.add(thread)
        thread.start()
        return thread

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the messages being sent (a
        console script about to exit)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            sending = list(self._sending)
        for thread in sending:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _send_all(self, texts: list[str]) -> None:
        try:
            for text in texts:
                try:
                    self.send(text)
                except Exception as exc:  # any failure: logged, the next tried
                    log.warning("%s webhook failed: %s", self.name, exc)
        finally:
            with self._lock:
                self._sending.discard(threading.current_thread())

    def send(self, text: str) -> None:
        """Post one message now, on this thread."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()
