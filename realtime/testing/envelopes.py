"""The JSON envelope ({"event", "data"}) on a test client: the same calls on every client."""

import json
import time

from ..envelope import envelope
from .waits import DEFAULT_TIMEOUT


class EnvelopeCalls:
    """For a client with `send(message)` and `receive(timeout)`; `timeout` is its default wait."""

    timeout = DEFAULT_TIMEOUT

    def send_json(self, event, data=None):
        self.send(envelope(event, data or {}))

    def receive_json(self, timeout=None):
        return json.loads(self.receive(timeout or self.timeout))

    def receive_event(self, event, timeout=None):
        """Skip other events until one named `event` arrives; return its data."""
        return self.receive_until(event, timeout)[1]

    def receive_until(self, event, timeout=None):
        """(every message before the first `event`, as parsed JSON; that event's data)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        before = []
        while True:
            message = self.receive_json(max(0.01, deadline - time.monotonic()))
            if message.get("event") == event:
                return before, message["data"]
            before.append(message)
