"""The demo WebSocket views: echo, ping, and the clock."""

from realtime.decorators import websocket
from realtime.envelope import ClientError, envelope, receive_events
from realtime.fanout.hub import get_hub
from realtime.transport.codes import NORMAL

from .clock import CHANNEL as CLOCK_CHANNEL, get_ticker

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


@websocket
def clock(request, ws):
    """`time` events from the process's one ticker; {"event": "close"} gets `goodbye`, then close 1000."""
    ticker = get_ticker()
    with get_hub().subscribe(CLOCK_CHANNEL, ws) as subscription:
        if ticker.latest:  # no greenlet switch since subscribing: this cannot overtake a newer tick
            subscription.push(ticker.latest)
        for event, _data in receive_events(ws):
            if event == "close":
                ws.send(envelope("goodbye", {"detail": "Bye: the server closes the connection."}))
                ws.close(NORMAL)
                return
            ws.send(ClientError("unknown_event", f"Unknown event {event!r}; expected 'close' or 'ping'.").as_event())
