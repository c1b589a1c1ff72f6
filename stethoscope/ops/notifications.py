"""Unexpected errors told to the team's chat, a few at a time.

A bug on a busy route raises on every request: one message per request
would flood the channel and hide the next, different, error. So at most one
message per ``interval`` for each kind of error (its exception type and the
route it happened on); the others are counted as suppressed, and the next
message sent for that kind says how many there were. Messages are sent by
the shared webhook notifier (stethoscope.notify): off the request's thread,
with a short timeout.
"""

import threading
import time
from collections.abc import Callable

from ..notify import WebhookNotifier


class ErrorNotifier:
    def __init__(
        self,
        notifier: WebhookNotifier,
        interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.notifier = notifier
        self.interval_s = interval_s
        self.monotonic = monotonic
        self._lock = threading.Lock()
        # (exception type, route) -> (when last sent, suppressed since)
        self._kinds: dict[tuple[str, str], tuple[float, int]] = {}
        self.sent = 0
        self.suppressed = 0

    def report(
        self, exc: BaseException, route: str, summary: str, request_id: str
    ) -> threading.Thread | None:
        """Tell the webhook of ``exc`` (on ``route``; ``summary`` says
        what was asked), unless its kind was told less than ``interval_s``
        ago. The sending thread, or None (suppressed, or no webhook)."""
        if not self.notifier.url:
            return None
        kind = (type(exc).__qualname__, route)
        now = self.monotonic()
        with self._lock:
            last = self._kinds.get(kind)
            if last is not None and now - last[0] < self.interval_s:
                self._kinds[kind] = (last[0], last[1] + 1)
                self.suppressed += 1
                return None
            self._kinds[kind] = (now, 0)
            self.sent += 1
        # The exception's text stays in the log (found by the request id):
        # it may quote what was posted, residents' data included.
        text = (
            f"Unexpected error {kind[0]} on {summary} (route {route}, "
            f"request {request_id}); the traceback is in the log"
        )
        if last is not None and last[1]:
            text += f"; {last[1]} more since the last message"
        return self.notifier.notify([text])

    def counts(self) -> dict[tuple[str], int]:
        with self._lock:
            return {("sent",): self.sent, ("suppressed",): self.suppressed}
