"""The demo WebSocket views of seed 003: echo and ping."""

from realtime.decorators import websocket

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
