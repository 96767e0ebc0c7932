"""One topic on a socket of its own, in the older framing: `{"event", "data"}`, no topic, no refs.

The per-route endpoints (`/chat/<room>/`, `/jobs/`, `/time/`) are thin adapters over the same
channel classes as `/socket/`: a OneTopicSocket joins the channel with what the query string says,
then hands every event the client sends to it. What differs per route (the `welcome` of the chat,
its `ack`s) is said by `joined` and `answered`, which a route's subclass overrides.
"""

import gevent

from ..envelope import ClientError, envelope, receive_events
from ..transport.codes import NORMAL
from .errors import OverBudget
from .sockets import ChannelSocket

RESYNC_DETAILS = {
    "too_far_behind": "Too many messages missed; here is recent history.",
    "unknown_since": "'since' is not a message this room still has; here is recent history.",
}


class OneTopicSocket(ChannelSocket):
    framed = False  # events go out as published

    def serve(self, channel, params, since=None):
        """Join `channel` (made for this socket), then serve the client's events until it leaves."""
        self.channel = channel
        channel.since = since
        self.enroll()
        try:
            self.wait_for_join_budget()
            response = self.channel.join(params)
            if not self.channel.subscriptions and self.channel.subscribes:
                self.channel.subscribe()
            self.joined(response)
            self.channel.joined()
            for event, data in receive_events(self.ws):
                self.receive(event, data)
        finally:
            self.withdraw()
            self.channel.close()

    def wait_for_join_budget(self):
        """Spend the join budget (`spend_join`). Over it, the client is told (`error` `rate_limited`
        with `retry_after`) and the join is tried again that much later, on the same socket: the
        connect is this route's join, and its clients do not join again by themselves. Meanwhile
        nothing is read; a client that went away ends it (the next send raises ConnectionClosed)."""
        while True:
            try:
                return self.spend_join()
            except OverBudget as refusal:
                self.ws.send(refusal.as_event())
                gevent.sleep(refusal.retry_after)

    def receive(self, event, data):
        try:
            response = self.channel.handle(event, data)
        except ClientError as error:  # (anything else fails the view: 1011, logged)
            self.refused(event, data, error)
            self.hold_off_after(error)
        else:
            self.answered(event, data, response)
        finally:
            self.channel.replied()

    def joined(self, response):
        """The join's response, in whatever events the route's clients expect (nothing by default)."""

    def answered(self, event, data, response):
        """A handler's response (nothing by default: the older routes answer few events)."""

    def refused(self, event, data, error):
        self.ws.send(error.as_event())

    def send_history(self, topic, history):
        if history.resync:  # before the history: the client starts over from it
            self.ws.send(envelope("resync", {"reason": history.resync, "detail": RESYNC_DETAILS[history.resync]}))
        self.before_history(history)
        super().send_history(topic, history)

    def before_history(self, history):
        """What the route's clients get right before the history (nothing by default)."""

    def end(self, topic, code, detail, rejoin):
        self.ws.send(envelope("error", {"code": code, "detail": detail}))
        self.ws.close(NORMAL)
