"""The per-process hub: channel -> local subscriptions, fed by one broker subscription.

A worker subscribes to a channel at the broker when its first local member joins and
unsubscribes when the last leaves. Each broker message is framed once and handed to every
local member's outbound queue (`Connection.send_frame`), which never waits: a slow client is
closed by its own queue limit and stalls nobody else.

Channels named `local:...` never reach the broker: they serve what one process produces for
its own sockets (the clock ticker), fed by `hub.deliver_here(channel, payload)`.

The worker starts the broker with this hub's `dispatch` and `resync_all` (realtime/server/worker.py).
This process's hub is `get_hub()` (realtime/runtime.py: made and reset with the broker).
"""

import logging

from websockets.frames import Frame, Opcode

from ..runtime import get_hub  # this process's hub: applications import it from here
from ..transport.codes import TRY_AGAIN_LATER

log = logging.getLogger("realtime.fanout.hub")

LOCAL_PREFIX = "local:"


def is_local(channel):
    """A process-local channel: fed by hub.dispatch in this process, never sent to the broker."""
    return channel.startswith(LOCAL_PREFIX)


def text_frame(payload):
    """A server text frame (unmasked), serialized once for any number of recipients."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


class Subscription:
    """One connection's membership of one channel.

    Created paused when the application must send a backlog first (history): live messages
    are held meanwhile, and `resume(skip)` sends the held ones the backlog did not contain.
    """

    def __init__(self, hub, channel, connection, paused):
        self.hub, self.channel, self.connection = hub, channel, connection
        self.held = [] if paused else None
        self.on_resync = None  # called after the broker reconnected: messages may have been missed

    def deliver(self, frame, payload):
        if self.held is None:
            self.connection.send_frame(frame)
        elif len(self.held) < self.connection.max_queue_messages:
            self.held.append((frame, payload))
        elif not self.connection.closed:  # once: later messages find it closed
            self.connection.abort(TRY_AGAIN_LATER, "slow consumer: too many messages held while syncing",
                                  "slow_consumer")

    def resume(self, skip=None):
        held, self.held = self.held or [], None
        for frame, payload in held:
            if skip is None or not skip(payload):
                self.connection.send_frame(frame)

    def push(self, text):
        """Send one text message to this member only, without waiting (safe from the listener)."""
        self.connection.send_frame(text_frame(text.encode()))

    def close(self):
        self.hub.unsubscribe(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ChannelWatcher:
    """What an application keeps per channel and process: `saw(payload)` runs once per message
    this process delivers on the channel (not once per member), `reconnected()` after the broker
    came back (it must not block: spawn the work)."""

    def saw(self, payload):
        pass

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

    def subscribe(self, channel, connection, paused=False):
        # A member gets frames from now on: its handshake must be complete (the 101 sent) first,
        # once here rather than on every delivery.
        connection.accept()
        subscription = Subscription(self, channel, connection, paused)
        self.groups.setdefault(channel, set()).add(subscription)
        if not is_local(channel):
            # Idempotent; returns once the broker delivers this channel to this process.
            self.broker.subscribe(channel)
        return subscription

    def unsubscribe(self, subscription):
        members = self.groups.get(subscription.channel)
        if members is None:
            return
        members.discard(subscription)
        if not members:
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
        members = self.groups.get(channel)
        if not members:
            return
        watcher = self.watchers.get(channel)
        if watcher is not None:
            watcher.saw(payload)
        frame = text_frame(payload)
        for subscription in list(members):
            subscription.deliver(frame, payload)

    def resync_all(self, channels=None):
        """The broker reconnected: what was published meanwhile never reached this process. Each
        channel's watcher catches its members up (once per channel, not per member). `channels`:
        only those were cut off (one Redis Cluster shard); None: all."""
        for channel, watcher in list(self.watchers.items()):
            if channels is None or channel in channels:
                watcher.reconnected()
        for channel, members in list(self.groups.items()):
            if channels is None or channel in channels:
                for subscription in list(members):
                    if subscription.on_resync is not None:
                        subscription.on_resync()

