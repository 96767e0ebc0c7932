"""The per-process hub: channel -> local subscriptions, fed by one broker subscription.

A worker subscribes to a channel at the broker when its first local member joins and
unsubscribes when the last leaves. Each broker message is framed once and handed to every
local member's send queue (`send_frame` of the socket interface, realtime/transport/websocket.py),
which never waits: a slow client is closed by its own queue limit and stalls nobody else.

Channels named `local:...` never reach the broker: they serve what one process produces for
its own sockets (the clock ticker), fed by `hub.deliver_here(channel, payload)`.

A backlog for every member at once (a catch-up after a broker blip: up to 1,000 chat messages of
12 KB) would overflow each member's send queue if handed over in one go, and close them all 1013:
`hub.deliver_paced` hands it over a piece at a time, letting members drain in between.

A message is published as an event (`{"event": ..., "data": ...}`). A member of a `/socket/`
(realtime.v1) gets it as a push of the topic it joined, `{"topic": ..., "event": ..., "data": ...}`:
the members of a channel are grouped by that topic, and each group's frame is made once per message.

The worker starts the broker with this hub's `dispatch` and `resync_all` (realtime/server/worker.py).
This process's hub is `get_hub()` (realtime/runtime.py: made and reset with the broker).
"""

import json
import logging
import time

import gevent
from websockets.frames import Frame, Opcode

from ..runtime import get_hub  # this process's hub: applications import it from here
from ..transport.websocket import PACED_PIECE_BYTES

log = logging.getLogger("realtime.fanout.hub")

LOCAL_PREFIX = "local:"

# deliver_paced: a piece is at most PACED_PIECE_BYTES (as a joiner's backlog's) and this many
# messages (each may be a chunk of its own in a member's queue, which holds 1,000 by default).
PACED_PIECE_MESSAGES = 100
# ... and after each piece, members have this long in all (not each) to write it out. A member
# that reads 256 KiB a second keeps up; a slower one falls behind in its own queue (closed 1013
# only if that overflows), and nobody waits on it longer than this per piece.
PACED_DRAIN_WAIT = 1.0


def is_local(channel):
    """A process-local channel: fed by hub.dispatch in this process, never sent to the broker."""
    return channel.startswith(LOCAL_PREFIX)


def text_frame(payload):
    """A server text frame (unmasked), serialized once for any number of recipients."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


def topic_head(topic):
    """The start of every push of `topic` on a realtime.v1 socket (None: pushes go out as published)."""
    return None if topic is None else b'{"topic":' + json.dumps(topic, ensure_ascii=False).encode() + b","


def on_topic(head, payload, offset=None):
    """A published event (JSON object text, bytes) as a push that starts with `head` (see topic_head),
    with its offset: the event's keys follow the topic's, copied once, not parsed."""
    if head is None:
        return payload
    if payload[:1] != b"{":  # raw text someone published on the channel: a `raw` event, still valid JSON
        payload = b'{"event":"raw","data":' + json.dumps(payload.decode(errors="replace")).encode() + b"}"
    if offset is not None:
        head += b'"offset":%d,' % offset
    return head + payload[1:]


# What a channel watcher's `saw` returns for a message that goes to nobody now: this process already
# delivered it, or the watcher deals with it itself (it may deliver it later: deliver_paced).
REPEAT = object()


class Subscription:
    """One connection's membership of one channel.

    Created paused when the application must send a backlog first (history): live messages
    are held meanwhile. `resume(floor)` then sends the held ones the backlog did not contain and
    from then on never delivers a message whose offset (see ChannelWatcher.saw) is at or below
    `floor`: the member has it from the backlog, even when its publish arrives later than the read.
    Held frames count against the connection's send queue (`hold`): a member whose hold does
    not fit is closed as a slow consumer, by the transport's one rule for it.
    """

    # One per member and topic, thousands per worker: no per-instance dict.
    __slots__ = ("hub", "channel", "connection", "head", "held", "floor", "on_resync")

    def __init__(self, hub, channel, connection, paused, head=None):
        self.hub, self.channel, self.connection = hub, channel, connection
        self.head = head  # topic_head of the topic its pushes are framed for (None: as published)
        self.held = [] if paused else None
        self.floor = 0  # offsets up to this one came in the backlog (offsets start at 1)
        self.on_resync = None  # called after the broker reconnected: messages may have been missed

    def deliver(self, frame, offset=None):
        if offset is not None and offset <= self.floor:
            return
        if self.held is None:
            self.connection.send_frame(frame)
        elif self.connection.hold(frame):
            self.held.append((frame, offset))

    def pause(self):
        """Hold live messages (bounded, as when created paused) until `resume`."""
        if self.held is None:
            self.held = []

    def resume(self, floor=None):
        """Deliver what was held, except offsets up to `floor` (if given: from now on), and live
        messages from now on."""
        held, self.held = self.held or [], None
        if floor is not None:
            self.floor = floor
        for frame, offset in held:
            self.connection.release(frame)
            self.deliver(frame, offset)

    def push(self, text):
        """Send one event (its text) to this member only, without waiting (safe from the listener)."""
        self.connection.send_frame(text_frame(on_topic(self.head, text.encode())))

    def close(self):
        held, self.held = self.held or [], None
        for frame, _ in held:
            self.connection.release(frame)
        self.hub.unsubscribe(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ChannelWatcher:
    """What an application keeps per channel and process: `saw(payload)` runs once per message
    this process delivers on the channel (not once per member), `reconnected()` after the broker
    came back (it must not block: spawn the work).

    `saw` returns the message's offset when the channel's messages have one (an int that orders
    them: subscriptions drop offsets their backlog had), REPEAT for a message this process already
    delivered (dropped for every member: realtime/fanout/offsets.py) or one it keeps for later, or None."""

    def saw(self, payload):
        return None

    def reconnected(self):
        pass


class Hub:
    def __init__(self, broker):
        self.broker = broker
        self.groups = {}
        self.watchers = {}  # channel -> the application's ChannelWatcher, while the channel has members

    def watcher(self, channel, create):
        """The channel's watcher (see ChannelWatcher), made by `create()` if it has none yet.
        Only for a channel this process has members of; it goes when the last one leaves."""
        watcher = self.watchers.get(channel)
        if watcher is None:
            watcher = self.watchers[channel] = create()
        return watcher

    def subscribe(self, channel, connection, paused=False, watcher=None, topic=None):
        """`connection`'s membership of `channel`. `watcher`: a function that makes the channel's
        watcher if it has none yet (see ChannelWatcher); made here, before any message can arrive.
        `topic`: the realtime.v1 topic its messages are pushes of (None: sent as published)."""
        # A member gets frames from now on: its handshake must be complete (the 101 sent) first,
        # once here rather than on every delivery.
        connection.accept()
        head = topic_head(topic)
        subscription = Subscription(self, channel, connection, paused, head)
        self.groups.setdefault(channel, {}).setdefault(head, set()).add(subscription)
        if watcher is not None:
            self.watcher(channel, watcher)
        if not is_local(channel):
            # Idempotent; returns once the broker delivers this channel to this process.
            self.broker.subscribe(channel)
        return subscription

    def unsubscribe(self, subscription):
        groups = self.groups.get(subscription.channel)
        members = None if groups is None else groups.get(subscription.head)
        if members is None:
            return
        members.discard(subscription)
        if not members:
            del groups[subscription.head]
        if not groups:
            del self.groups[subscription.channel]
            self.watchers.pop(subscription.channel, None)
            if not is_local(subscription.channel):
                self.broker.unsubscribe(subscription.channel)

    def has_members(self, channel):
        """Whether any socket of this process is subscribed to `channel`."""
        return channel in self.groups

    def deliver_here(self, channel, payload):
        """Hand `payload` (bytes) to this process's members of `channel` only, as if the broker had
        brought it: a local channel's feed, or a catch-up read from the database."""
        self.dispatch(channel, payload)

    def dispatch(self, channel, payload):
        """The broker's callback: a message on `channel` for this process's members."""
        groups = self.groups.get(channel)
        if not groups:
            return
        watcher = self.watchers.get(channel)
        offset = None if watcher is None else watcher.saw(payload)
        if offset is REPEAT:
            return
        self._deliver(groups, payload, offset)

    def _deliver(self, groups, payload, offset):
        for head, members in list(groups.items()):
            frame = text_frame(on_topic(head, payload, offset))
            for subscription in list(members):
                subscription.deliver(frame, offset)

    def deliver_paced(self, channel, messages):
        """Hand `messages`, (offset or None, payload bytes) in order, to this process's members of
        `channel` as `dispatch` does, without asking its watcher (the caller counted them), a piece
        at a time: after each piece (PACED_PIECE_BYTES or PACED_PIECE_MESSAGES) the members have
        PACED_DRAIN_WAIT s in all to write it out before the next. So a backlog bigger than a send
        queue reaches every member that reads, at about the pace of the members, for the cost of
        its delivery and one look at each member per piece; a member that does not keep up is
        the slow consumer of the transport's one rule, and keeps nobody waiting past the bound."""
        size = count = 0
        for offset, payload in messages:
            groups = self.groups.get(channel)
            if not groups:  # every member left
                return
            self._deliver(groups, payload, offset)
            size, count = size + len(payload), count + 1
            if size >= PACED_PIECE_BYTES or count >= PACED_PIECE_MESSAGES:
                self._let_drain(channel)
                size = count = 0
            else:
                gevent.sleep(0)  # as the broker's listener after each message: the sockets' readers run

    def _let_drain(self, channel):
        """Wait until the members of `channel` wrote out what is queued for them, PACED_DRAIN_WAIT s at most."""
        deadline = time.monotonic() + PACED_DRAIN_WAIT
        members = [s for group in list(self.groups.get(channel, {}).values()) for s in group]
        for subscription in members:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            subscription.connection.wait_drained(left)
        gevent.sleep(0)  # members that had nothing queued waited for nothing: others run now

    def resync_all(self, channels=None):
        """The broker reconnected: what was published meanwhile never reached this process. Each
        channel's watcher catches its members up (once per channel, not per member). `channels`:
        only those were cut off (one Redis Cluster shard); None: all."""
        for channel, watcher in list(self.watchers.items()):
            if channels is None or channel in channels:
                watcher.reconnected()
        for channel, groups in list(self.groups.items()):
            if channels is None or channel in channels:
                for subscription in [s for members in list(groups.values()) for s in members]:
                    if subscription.on_resync is not None:
                        subscription.on_resync()

