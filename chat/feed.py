"""A room's live feed in one worker process: after a broker blip, its members are caught up on
their open sockets instead of being told to reconnect.

PubSub is at-most-once: what was published while the worker's Redis connection was down never
reaches it. The feed knows the highest message id the worker delivered in the room (or sent as a
joiner's history), so when the connection comes back it reads what came after from the database
(once for the room, not once per member) and delivers it like live messages; clients drop the ids
they already have. Then a fresh member-list page, since diffs may have been missed too. Only when
more was missed than a resume may replay do the members get `resync` and reconnect.

Each message goes out once: the feed tells the hub a message's id (its offset), and which ones this
process delivered before (a publish repeated after a failover, or a catch-up that read a message whose
publish was still on its way), which then go to nobody.
"""

import json
import logging

import gevent

from realtime.envelope import envelope
from realtime.fanout.hub import REPEAT, ChannelWatcher, get_hub
from realtime.fanout.offsets import DeliveredOffsets
from realtime.presence import get_presence

from .services import room_channel, shared_backlog

log = logging.getLogger("chat")


def message_id(payload):
    """The id of a published `message` event (None for other events)."""
    event = json.loads(payload)
    return event["data"]["id"] if event["event"] == "message" else None


class RoomFeed(ChannelWatcher):
    def __init__(self, room):
        self.room, self.channel = room, room_channel(room.name)
        self.last_id = 0  # every member here was sent the messages up to this id (or has them coming)
        # The ids delivered live here, from the first joiner's history on (None before it was sent).
        self.delivered = None

    def saw(self, payload):
        seq = message_id(payload)
        if seq is None:
            return None
        if self.delivered is not None and not self.delivered.first(seq):
            return REPEAT
        self.last_id = max(self.last_id, seq)
        return seq

    def sent_history(self, last_id):
        """A joiner was sent the history up to `last_id`. Only the first joiner's marks ids as
        delivered: members who joined earlier may not have a later joiner's history."""
        self.last_id = max(self.last_id, last_id)
        if self.delivered is None:
            self.delivered = DeliveredOffsets(last_id)

    def reconnected(self):
        gevent.spawn(self.catch_up)

    def catch_up(self):
        try:
            missed = shared_backlog(self.room, self.last_id)
            if missed.resync:
                self.deliver(envelope("resync", {
                    "reason": "broker_reconnected", "detail": "Too many messages missed: reconnect with 'since'."}))
                return
            for seq, text in missed.messages:
                self.deliver(text)
            page = get_presence().page(self.channel)
            if page is not None:
                self.deliver(page.event("presence", {"room": self.room.name}))
            log.info("caught up %s after a broker reconnect: %d messages", self.room.name, len(missed.messages))
        except Exception:
            log.exception("could not catch up %s after a broker reconnect", self.room.name)
            self.deliver(envelope("resync", {
                "reason": "broker_reconnected", "detail": "Messages may have been missed: reconnect with 'since'."}))

    def deliver(self, text):
        """To every member in this process, as if it came from the broker."""
        get_hub().deliver_here(self.channel, text.encode())
