"""A room's live feed in one worker process: after a broker blip, its members are caught up on
their open sockets instead of being told to reconnect.

PubSub is at-most-once: what was published while the worker's Redis connection was down never
reaches it. The feed knows the highest message id the worker delivered in the room (or sent as its
first joiner's history), so when the connection comes back it reads what came after from the database
(once for the room, not once per member) and delivers it like live messages. Then a fresh
member-list page, since diffs may have been missed too. Only when more was missed than a resume
may replay do the members get `resync` and reconnect.

The catch-up may be 1,000 messages of 12 KB, three times a member's send queue: it goes out paced
(`hub.deliver_paced`: a piece, then the members drain), so that members who read stay connected
rather than all being closed 1013 at once and all reconnecting. It takes a while, and live messages
that arrive meanwhile wait in the feed (once for the room, bounded) until it is done: every member
gets each message once, in id order. Past the bound they are dropped and read again from the
database, where they are stored before they are published.

Each message goes out once: the feed tells the hub a message's id (its offset), and which ones this
process delivered before (a publish repeated after a failover, or a catch-up that read a message whose
publish was still on its way), which then go to nobody.
"""

import json
import logging

from realtime.envelope import envelope
from realtime.fanout.hub import REPEAT, ChannelWatcher, get_hub
from realtime.fanout.offsets import DeliveredOffsets
from realtime.presence import get_presence
from realtime.supervisor import supervisor

from .services import room_channel, shared_backlog

log = logging.getLogger("chat")

# Live messages kept while a room catches up: at most this many bytes and messages (then they are
# read from the database instead).
HELD_BYTES = 256 * 1024
HELD_MESSAGES = 1000


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
        # While catching up: the live messages that arrived meanwhile, (id, payload), and their bytes.
        self.held, self.held_bytes = None, 0
        self.read_again = False  # while catching up: what was missed must be read once more

    def saw(self, payload):
        seq = message_id(payload)
        if seq is None:
            return None
        if self.held is not None:  # after what the catch-up delivers
            self.hold(seq, payload)
            return REPEAT
        return self.count(seq)

    def count(self, seq):
        """The offset of message `seq`, counted as delivered; REPEAT if this process delivered it already."""
        if self.delivered is not None and not self.delivered.first(seq):
            return REPEAT
        self.last_id = max(self.last_id, seq)
        return seq

    def hold(self, seq, payload):
        if len(self.held) >= HELD_MESSAGES or self.held_bytes + len(payload) > HELD_BYTES:
            self.held, self.held_bytes, self.read_again = [], 0, True  # stored: the next read has them
        else:
            self.held.append((seq, payload))
            self.held_bytes += len(payload)

    def sent_history(self, last_id):
        """A joiner was sent the history up to `last_id`. Only the first joiner's counts: members who
        joined earlier may not have a later joiner's history (read during a broker outage, it has
        what they missed: the catch-up must still read it for them; the joiner's floor drops it)."""
        if self.delivered is None:
            self.last_id = max(self.last_id, last_id)
            self.delivered = DeliveredOffsets(last_id)

    def reconnected(self):
        if self.held is not None:  # a catch-up runs: it reads once more before it ends
            self.read_again = True
            return
        self.held, self.held_bytes, self.read_again = [], 0, False  # live messages wait from now on
        supervisor.run_task("chat-catch-up", self.catch_up)

    def catch_up(self):
        try:
            delivered = self.replay()
            detail = "Too many messages missed: reconnect with 'since'."
        except Exception:
            log.exception("could not catch up %s after a broker reconnect", self.room.name)
            delivered, detail = None, "Messages may have been missed: reconnect with 'since'."
        finally:
            self.held = None  # right after the replay's last look at it: no live message is left behind
        if delivered is None:
            self.deliver(envelope("resync", {"reason": "broker_reconnected", "detail": detail}))
            return
        page = get_presence().page(self.channel)
        if page is not None:
            self.deliver(page.event("presence", {"room": self.room.name}))
        log.info("caught up %s after a broker reconnect: %d messages", self.room.name, delivered)

    def replay(self):
        """Deliver what was missed, then what came live meanwhile, until nothing is left; returns how
        many messages went out (None: more were missed than a resume may replay)."""
        delivered = 0
        while True:
            self.read_again = False
            missed = shared_backlog(self.room, self.last_id)
            if missed.resync:
                return None
            delivered += self.deliver_paced([(seq, text.encode()) for seq, text in missed.messages])
            while self.held and not self.read_again:  # what came live meanwhile, in the order it came
                held, self.held, self.held_bytes = self.held, [], 0
                delivered += self.deliver_paced(held)
            if not self.read_again:
                return delivered

    def deliver_paced(self, messages):
        """(id, payload) messages to every member here, paced, but those this process delivered
        already; returns how many went out. Counted now: their live copies arriving meanwhile are
        held, then found repeats."""
        fresh = [(seq, payload) for seq, payload in messages if self.count(seq) is not REPEAT]
        get_hub().deliver_paced(self.channel, fresh)
        return len(fresh)

    def deliver(self, text):
        """To every member in this process, as if it came from the broker."""
        get_hub().deliver_here(self.channel, text.encode())
