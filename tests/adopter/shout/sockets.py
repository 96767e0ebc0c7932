import realtime
from realtime.decorators import websocket


@websocket
def shout(request, ws):
    """Every message comes back in capitals; "where?" gets the folder `realtime` was imported from."""
    while (message := ws.receive()) is not None:
        ws.send(realtime.__path__[0] if message == "where?" else message.upper())
