"""The chat's one-topic route `/chat/<room>/`: a RoomChannel (chat/channels.py) on a socket of its
own, in the older framing (docs/protocol.md, Chat).

The query string says what a join's params and `since` say on `/socket/` (`name`, `color`, `client`,
`since`). The client sends `message` {"text", "nonce"}, `nick`, `members` and the heartbeat `ping`;
the server sends the history as `message` events, `welcome` (who you are, and `last_id`, the
resume point), then live events; `ack` {"nonce", "id"} for a stored message that carried a nonce,
a `members` page when asked, and `error` {"code", "detail"} for bad input (with the `nonce` of a
refused message), after which the connection stays open.
"""

from django.http import HttpResponseForbidden, HttpResponseNotFound

from realtime.channels.legacy import OneTopicSocket
from realtime.db import read_user, run_read
from realtime.decorators import websocket
from realtime.envelope import ClientError, envelope

from .channels import RoomChannel, open_room
from .nonces import nonces_of
from .services import LOBBY, room_channel

REFUSALS = {"not_found": HttpResponseNotFound, "forbidden": HttpResponseForbidden}


class RoomSocket(OneTopicSocket):
    def before_history(self, history):
        # The room's copies carry no nonce, and this route's clients match their pending messages by
        # nonce: first the acks of the client's own messages in this history (only it gets them).
        sender = self.channel.sender
        if history.messages and not sender.startswith("conn:"):
            first, last = history.messages[0][0], history.messages[-1][0]
            for nonce, message_id in run_read(lambda: nonces_of(self.channel.room, sender, first, last)):
                self.ws.send(envelope("ack", {"nonce": nonce, "id": message_id}))

    def joined(self, response):
        self.ws.send(envelope("welcome", {**response, "last_id": self.channel.resume.offset}))

    def answered(self, event, data, response):
        if event == "message":
            self.acknowledge(data, response["id"])
        elif event == "members":
            self.ws.send(envelope("members", response))

    def refused(self, event, data, error):
        if error.code == "delivery_degraded":  # stored all the same: the sender may forget it
            self.acknowledge(data, error.extra["id"])
        super().refused(event, data, error)

    def acknowledge(self, data, message_id):
        if data.get("nonce") is not None:
            self.ws.send(envelope("ack", {"nonce": data["nonce"], "id": message_id}))


# A chat event carries at most 2,000 characters of text: 16 KiB holds them in UTF-8 and JSON
# escapes. Bigger is not a chat message; nobody gets to make the worker parse 1 MiB of JSON.
CHAT_MAX_MESSAGE_BYTES = 16 * 1024


@websocket(max_message_size=CHAT_MAX_MESSAGE_BYTES)
def chat_room(request, ws, room=LOBBY):
    # A logged-in user's session and account are read now, in a database reader's turn: a crowd
    # of handshakes never opens more connections than WEBSOCKET_DB_CONCURRENCY (realtime/db/).
    user = read_user(request)
    try:
        opened = open_room(room, user)  # refused over plain HTTP, before the socket opens
    except ClientError as refusal:
        return REFUSALS[refusal.code](refusal.detail + "\n", content_type="text/plain; charset=utf-8")
    params = {key: request.GET[key] for key in ("name", "color", "client") if key in request.GET}
    since = request.GET.get("since")
    try:
        since = int(since) if since not in (None, "") else None
        if since is not None and since < 0:
            raise ValueError
    except ValueError:
        ws.send(ClientError("invalid_since", "'since' must be a message id (an integer).").as_event())
        since = None
    socket = RoomSocket(request, ws, user)
    channel = RoomChannel(socket, room_channel(room), {"room": room})
    channel.room = opened
    try:
        socket.serve(channel, params, since)
    except ClientError as error:  # a name or colour the chat refuses (checked first): told, joined as a guest
        if error.code != "invalid_nick":
            raise
        ws.send(error.as_event())
        socket.serve(channel, {key: params[key] for key in params if key not in ("name", "color")}, since)
