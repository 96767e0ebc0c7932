"""A channel: one topic joined by one socket, as a view is one request.

A subclass decides who may listen (`join`), answers what members push (`handle_<event>`) and
cleans up (`leave`)::

    class ProjectChannel(Channel):
        def join(self, params):
            project = run_read(lambda: Project.objects.filter(pk=self.kwargs["pk"]).first())
            if project is None or not self.user.has_perm("projects.view_project", project):
                raise Forbidden("This project is not yours.")
            return {"name": project.name}           # the join's reply

        def handle_comment(self, data):             # push `comment`
            ...
            return {"id": comment.pk}               # the reply; raise ChannelError(code, detail) to refuse

`self.user` is the socket's user (its session's, or its token's), `self.request` its handshake,
`self.kwargs` the route's arguments, `self.topic` the topic's name. A member is subscribed to the
channel named like the topic (what `realtime.publish(topic, ...)` reaches) when `join` returns,
unless `join` subscribed itself: first, to read a snapshot that nothing published meanwhile misses.
"""

import re

from ..envelope import envelope
from ..fanout.brokers import publish as broker_publish
from .errors import ChannelError
from .history import Resume

HANDLED_EVENT = re.compile(r"[a-z][a-z0-9_]*")


class Channel:
    subscribes = True  # subscribe the member to `self.topic` after a join that did not subscribe
    _after_reply = None
    # For the server API (realtime/api/, docs/api.md), which has a topic but no socket:
    server_publishes = True  # False: its members hear a channel of the server's own (refused, not lost)
    has_history = False  # publications are stored and numbered: `publish_from_server`, `read_history`
    has_presence = False  # members are listed in presence under the topic's name

    def __init__(self, socket, topic, kwargs):
        self.socket, self.topic, self.kwargs = socket, topic, kwargs
        self.user, self.request = socket.user, socket.request
        self.since = None  # the join's `since`: the last offset the client has (topics with history)
        self.resume = None  # a Resume, once the history was sent
        self.subscriptions = []

    # --- what a channel defines -------------------------------------------------------------

    def join(self, params):
        """Refuse (raise Forbidden or ChannelError) or return the reply's response (a dict, or None)."""
        return {}

    def joined(self):
        """After the join's reply went out: live pushes may start (a held subscription resumes)."""

    def leave(self):
        """The member left (or its socket closed); its subscriptions end after this."""

    # --- what a channel uses ------------------------------------------------------------------

    def subscribe(self, channel=None, paused=False, watcher=None):
        """This member's subscription to a hub channel (the topic's own by default): its messages
        become pushes of this topic. See realtime.fanout.hub.Hub.subscribe for `paused` and `watcher`."""
        subscription = self.socket.subscribe(channel or self.topic, self.topic, paused, watcher)
        self.subscriptions.append(subscription)
        return subscription

    def push(self, event, data):
        """Send this member alone an event of this topic."""
        self.socket.push(self.topic, envelope(event, data))

    def send_history(self, history):
        """Push a History (what the member missed since `self.since`, or recent publications) before
        any live one, and keep the resume point for the join's reply; returns its offset."""
        offset, recovered = 0, False
        if history.resync is None and self.since is not None:
            offset, recovered = self.since, True
        if history.messages:
            offset = history.messages[-1][0]
        self.resume = Resume(offset, recovered, history.resync if self.since is not None else None)
        self.socket.send_history(self.topic, history)
        return offset

    def reply_first(self, subscription):
        """Hold `subscription`'s live messages until the reply to the event being handled is out: a
        member that posts gets its reply (the id of what it posted) before everybody's copy of it."""
        subscription.pause()
        self._after_reply = subscription.resume

    def end(self, code, detail, rejoin=False):
        """End this topic for this member: it is told (`close`) and left; the socket stays."""
        self.socket.end(self.topic, code, detail, rejoin)

    # --- what the server API calls, on the class (no socket, no member) ------------------------

    @classmethod
    def publish_from_server(cls, topic, kwargs, event, data, sender, nonce):
        """Publish `event` to every member of the topic for server code; returns what the caller is
        told. By default it is published (`realtime.publish`) and kept nowhere. A topic with history
        stores it first, at most once per `sender` and `nonce`, and returns {"offset": N}; raise
        ChannelError to refuse (its code and detail go to the caller)."""
        broker_publish(topic, envelope(event, data))
        return {}

    @classmethod
    def read_history(cls, topic, kwargs, before, limit):
        """A topic with history: its last `limit` publications below offset `before` (None: the
        latest), newest first, as (offset, event, data)."""
        raise NotImplementedError

    # --- what the layer calls -----------------------------------------------------------------

    def reply_fields(self):
        """What the join's reply says beside the response: where a topic with history resumes."""
        return {} if self.resume is None else self.resume.reply()

    def handle(self, event, data):
        handler = getattr(self, f"handle_{event}", None) if HANDLED_EVENT.fullmatch(event) else None
        if handler is None:
            raise ChannelError("unknown_event", f"Topic {self.topic!r} has no event {event!r}.")
        return handler(data)

    def replied(self):
        """The reply to the event handled went out (or its error did): release what reply_first held."""
        after, self._after_reply = self._after_reply, None
        if after is not None:
            after()

    def close(self):
        """Leave, then end every subscription (a failing leave still ends them)."""
        try:
            self.leave()
        finally:
            for subscription in self.subscriptions:
                subscription.close()
            self.subscriptions = []
