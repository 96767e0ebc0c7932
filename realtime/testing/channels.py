"""Test clients of the channel layer (realtime.v1 on `/socket/`): join topics, push, and assert on
replies and pushes, in this process (`ChannelCommunicator`) or against a real worker (`ChannelClient`).

    with ChannelCommunicator(user=ann) as socket:
        socket.join("user:%d" % ann.pk)                       # the reply's data; ErrorReply if refused
        with self.assertRaises(ErrorReply) as refused:
            socket.join("user:%d" % bob.pk)
        self.assertEqual(refused.exception.code, "forbidden")
        self.assertEqual(socket.push("chat:lobby", "message", {"text": "hi"}), {"id": 1})
        self.assertEqual(socket.receive_push("chat:lobby", "message")["data"]["text"], "hi")
"""

import base64
import collections
import itertools
import json
import time

from django.urls import reverse

from .. import conf
from ..fanout.brokers import get_broker
from ..fanout.hub import get_hub
from .client import WebSocketClient
from .communicator import WebsocketCommunicator
from .waits import DEFAULT_TIMEOUT

SUBPROTOCOL = "realtime.v1"


class ErrorReply(AssertionError):
    """An error reply: `code`, `detail` and the whole `response`."""

    def __init__(self, topic, event, response):
        super().__init__(f"{topic} {event}: {response.get('code')}: {response.get('detail')}")
        self.response = response
        self.code, self.detail = response.get("code"), response.get("detail")


def bearer_offer(token):
    """The subprotocol offer that carries a token: realtime.bearer.<base64url, no padding>."""
    return "realtime.bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def socket_path():
    return reverse("socket", urlconf=conf.get("WEBSOCKET_URLCONF"))


class ChannelCalls:
    """realtime.v1 over any test client that has `send(text)` and `receive(timeout)`."""

    timeout = DEFAULT_TIMEOUT

    @property
    def pushes(self):
        """Pushes received and not yet taken by receive_push, oldest first."""
        if "_pushes" not in self.__dict__:
            self._pushes, self._refs, self.before_reply = collections.deque(), itertools.count(1), []
        return self._pushes

    def request(self, topic, event, data=None, timeout=None):
        """Send a frame with a new ref and return its reply's `data` ({"status", "response", ...});
        the pushes that came before the reply are kept (see `before_reply` and receive_push)."""
        pushes = self.pushes
        ref = str(next(self._refs))
        self.send(json.dumps({"topic": topic, "event": event, "data": data or {}, "ref": ref}))
        deadline = time.monotonic() + (timeout or self.timeout)
        self.before_reply = []
        while True:
            frame = json.loads(self.receive(timeout=max(0.01, deadline - time.monotonic())))
            if frame.get("event") == "reply" and frame.get("ref") == ref:
                return frame["data"]
            self.before_reply.append(frame)
            pushes.append(frame)

    def call(self, topic, event, data=None, timeout=None):
        """The ok reply's data of a request; ErrorReply if it was refused."""
        reply = self.request(topic, event, data, timeout)
        if reply["status"] != "ok":
            raise ErrorReply(topic, event, reply["response"])
        return reply

    def join(self, topic, params=None, since=None, timeout=None):
        """Join a topic: the reply's data ({"status": "ok", "response", and "offset"... with history})."""
        data = {"params": params or {}}
        if since is not None:
            data["since"] = since
        return self.call(topic, "join", data, timeout)

    def push(self, topic, event, data=None, timeout=None):
        """Push an event: the reply's response; ErrorReply if refused."""
        return self.call(topic, event, data, timeout)["response"]

    def leave(self, topic, timeout=None):
        return self.call(topic, "leave", None, timeout)["response"]

    def receive_push(self, topic=None, event=None, timeout=None):
        """The next push of `topic` named `event` (either may be None: any); the pushes before it that
        do not match are dropped."""
        pushes = self.pushes
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            frame = pushes.popleft() if pushes else json.loads(
                self.receive(timeout=max(0.01, deadline - time.monotonic())))
            if (topic is None or frame.get("topic") == topic) and (event is None or frame.get("event") == event):
                return frame


class ChannelCommunicator(ChannelCalls, WebsocketCommunicator):
    """A `/socket/` client in this process, with no server (see WebsocketCommunicator): the channel
    classes run as in a worker, their broadcasts through this process's broker, which delivers to
    this process's sockets while any communicator is connected (as a worker's does from its start).
    `user`: logged in as that user (a session); `token`: a token offered in the subprotocol."""

    def __init__(self, user=None, token=None, path=None, headers=None, timeout=DEFAULT_TIMEOUT):
        offers = [SUBPROTOCOL] + ([bearer_offer(token)] if token else [])
        super().__init__(path or socket_path(), headers={"Sec-WebSocket-Protocol": ", ".join(offers),
                                                          **(headers or {})}, timeout=timeout, user=user)
        self._listening = False

    def connect(self, timeout=None):
        if not self._listening:
            self._listening = True
            _broker_here.listen()
        return super().connect(timeout)

    def disconnect(self, timeout=None):
        try:
            super().disconnect(timeout)
        finally:
            if self._listening:
                self._listening = False
                _broker_here.stop_listening()


class BrokerHere:
    """This process's broker delivering to its hub while communicators need it, and only if it was
    not delivering already (a test process is no worker: what it publishes otherwise goes nowhere)."""

    def __init__(self):
        self.users, self.started = 0, None

    def listen(self):
        broker, hub = get_broker(), get_hub()
        if self.users == 0 and broker.on_message is None:
            broker.start(hub.dispatch, hub.resync_all)
            self.started = broker
        self.users += 1

    def stop_listening(self):
        self.users -= 1
        if self.users == 0 and self.started is not None:
            self.started.stop()
            self.started = None


_broker_here = BrokerHere()


class ChannelClient(ChannelCalls, WebSocketClient):
    """A `/socket/` client of a real worker (websocket-client), offering realtime.v1 (and a token)."""

    def __init__(self, url, token=None, timeout=DEFAULT_TIMEOUT, **options):
        offers = [SUBPROTOCOL] + ([bearer_offer(token)] if token else [])
        super().__init__(url, timeout=timeout, subprotocols=offers, **options)
