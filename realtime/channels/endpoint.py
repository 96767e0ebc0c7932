"""The one endpoint of the channel layer: `/socket/`, speaking realtime.v1 (docs/protocol.md, Channels).

Its route is the project's (`path("socket/", channel_socket, name="socket")` in WEBSOCKET_URLCONF).
The subprotocol is chosen here, before the 101, which the handler sends with it; a token may
ride the offer (`realtime.bearer.<base64url>`), so that it is in no URL and no access log.
"""

import base64
import binascii

from django.http import HttpResponseBadRequest

from ..db import read_user
from ..decorators import websocket
from .errors import ChannelError
from .frames import error_push
from .sockets import Socket
from .tokens import InvalidToken

VERSION = "realtime.v1"
SUPPORTED = (VERSION,)
BEARER = "realtime.bearer."
UNAUTHORIZED = 4401  # close code: the token is invalid or expired
# The largest frame a client may send on /socket/: a chat message (2,000 characters) with its
# envelope fits many times over; bigger closes the connection (1009) before it is read.
MAX_FRAME_BYTES = 64 * 1024


def offers(request):
    """The subprotocols the client offers, in its order."""
    header = request.META.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "")
    return [offer.strip() for offer in header.split(",") if offer.strip()]


def bearer_token(offer):
    """The token an offer `realtime.bearer.<base64url, no padding>` carries (None if it is not valid)."""
    encoded = offer[len(BEARER):]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


@websocket(max_message_size=MAX_FRAME_BYTES)
def channel_socket(request, ws):
    offered = offers(request)
    bearers = [offer for offer in offered if offer.startswith(BEARER)]
    versions = [offer for offer in offered if not offer.startswith(BEARER)]
    if offered and not set(versions) & set(SUPPORTED):
        return HttpResponseBadRequest(f"Unsupported subprotocol: offer {', '.join(SUPPORTED)}.\n",
                                      content_type="text/plain; charset=utf-8")
    if versions:
        request.META["realtime.subprotocol"] = VERSION  # the handler puts it in the 101
    ws.core.on_rate_limited = rate_limited_push  # the transport's notice, as a realtime.v1 push
    socket = Socket(request, ws, read_user(request))
    if bearers:
        token = bearer_token(bearers[0])
        try:
            if token is None:
                raise InvalidToken("invalid", "The bearer offer is not base64url.")
            socket.authenticate(token)
        except InvalidToken as error:
            ws.accept()
            ws.close(UNAUTHORIZED, error.detail[:120])  # a close reason holds at most 123 bytes
            return None
    socket.run()
    return None


def rate_limited_push(rate):
    """What a client is told (at most once a second) when a frame of its was dropped for the rate limit."""
    return error_push(ChannelError(
        "rate_limited", f"Too many frames: at most {rate:g} per second on this socket, all topics together. "
                        "This one was dropped (no reply will come); keep flooding and the socket is closed (1008).",
        retry_after=round(1 / rate, 3)))
