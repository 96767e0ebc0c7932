"""The demo WebSocket views: echo, ping (low-level `@websocket` views), and the clock's one-topic
route `/time/` (ClockChannel, demos/channels.py, in the older framing)."""

from realtime.channels.legacy import OneTopicSocket
from realtime.db import read_user
from realtime.decorators import websocket
from realtime.envelope import envelope
from realtime.transport.codes import NORMAL

from .channels import ClockChannel

PING_REPLIES = {"ping": "pong", "pong": "ping"}


@websocket
def echo(request, ws):
    """Send every message back unchanged: text as text, binary as binary, empty included."""
    while (message := ws.receive()) is not None:
        ws.send(message)


@websocket
def ping(request, ws):
    """Answer "ping" with "pong" and "pong" with "ping"; anything else gets no reply."""
    while (message := ws.receive()) is not None:
        reply = PING_REPLIES.get(message)
        if reply is not None:
            ws.send(reply)


class ClockSocket(OneTopicSocket):
    def joined(self, response):
        if response:  # the latest tick at once
            self.ws.send(envelope("time", response))

    def receive(self, event, data):
        if event == "close":  # `goodbye`, then a close frame with 1000
            self.ws.send(envelope("goodbye", {"detail": "Bye: the server closes the connection."}))
            self.ws.close(NORMAL)
        else:
            super().receive(event, data)


@websocket
def clock(request, ws):
    """`time` events from the process's one ticker; {"event": "close"} gets `goodbye`, then close 1000."""
    socket = ClockSocket(request, ws, read_user(request))
    socket.serve(ClockChannel(socket, "clock", {}), {})
