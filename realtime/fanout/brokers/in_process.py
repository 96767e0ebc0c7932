"""The in-process broker: messages stay inside one worker process (development, one worker)."""

import logging

from .base import Broker

log = logging.getLogger("realtime.brokers")


class InProcessBroker(Broker):
    """Hands messages straight to this process's hub: one worker process only."""

    kind = "in-process"
    reaches_other_processes = False

    def __init__(self, names=None):
        super().__init__(names)
        self.connected = True
        self._warned = False

    def start(self, on_message, on_reconnect=None):
        self.on_message = on_message

    def stop(self):
        self.on_message = None

    def subscribe(self, channel):
        pass

    def unsubscribe(self, channel):
        pass

    def publish(self, channel, message):
        if self.on_message is None:
            if not self._warned:
                log.warning("in-process broker: a message published outside the websocket worker "
                            "reaches no socket (set REDIS_URL to connect processes)")
                self._warned = True
            return
        self.on_message(channel, message.encode() if isinstance(message, str) else message)

    def describe(self):
        return "in-process broker (serves a single worker process; set REDIS_URL for more)"
