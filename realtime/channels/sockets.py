"""A socket as its channels see it, and the realtime.v1 socket: many topics, one connection.

`Socket` reads the client's frames and routes them: the system topic (heartbeat, auth), `join` and
`leave` of a topic, and every other event to the channel of its topic, answering each frame that
has a `ref`. Every frame of every topic is one message of the connection: the transport's one
message budget covers them all (docs/limits.md).
"""

import logging

from .. import conf
from ..budgets import Rate, budget_holder, hold_off, retry_after, spend
from ..db import run_read
from ..envelope import ClientError, envelope
from ..fanout.hub import get_hub, on_topic, text_frame, topic_head
from . import frames
from .errors import ChannelError, Forbidden, OverBudget
from .revocation import registry, session_mark
from .routing import UnknownTopic, admitted, get_router
from .tokens import InvalidToken, read_token

log = logging.getLogger("realtime.channels")

# The sessions one socket may authenticate by while open (its `auth` refreshes from other sessions
# add theirs): bounded, as everything a client adds to.
MAX_SESSIONS = 8


class ChannelSocket:
    """What channels use of their socket: who it is, and how its pushes are framed."""

    framed = True  # realtime.v1: pushes carry their topic (a one-topic socket sends events as published)

    def __init__(self, request, ws, user):
        self.request, self.ws, self.user = request, ws, user
        # The sessions it authenticated by (its cookie's, each token's; None: a command's token): a
        # logout of any of them ends it (revocation.py), with what it joined on that session's word.
        session = getattr(request, "session", None)
        self.sessions = {session_mark(session.session_key)} if session is not None and user.is_authenticated else set()

    def spend_join(self):
        """Spend a unit of the join budget of this socket's client (its account's, else its address's),
        shared by all its sockets on every worker: a join reads history and writes presence, and the
        socket's own message rate does not stop a client with a hundred sockets. OverBudget if spent."""
        guest = not self.user.is_authenticated
        rate = Rate(conf.get("WEBSOCKET_GUEST_JOIN_RATE" if guest else "WEBSOCKET_JOIN_RATE"),
                    conf.get("WEBSOCKET_GUEST_JOIN_BURST" if guest else "WEBSOCKET_JOIN_BURST"))
        wait = spend("join", budget_holder(self.user, self.request), rate)
        if wait:
            seconds = retry_after(wait)
            raise OverBudget(f"Too many joins: over your {'address' if guest else 'account'}'s join budget. "
                             f"Join again in {seconds:g} s.", seconds)

    def hold_off_after(self, error):
        """After refusing `error`: a client over one of its budgets is not read for a moment
        (budgets.hold_off), so that flooding costs this worker no refusal per message."""
        if isinstance(error, OverBudget):
            hold_off(error.retry_after)

    def enroll(self):
        """Be found by `disconnect(user)` (a logout, a ban) while open, when authenticated."""
        if self.user.is_authenticated:
            registry.add(self, self.user.pk)

    def withdraw(self):
        if self.user.is_authenticated:
            registry.discard(self, self.user.pk)

    def subscribe(self, channel, topic, paused, watcher):
        return get_hub().subscribe(channel, self.ws, paused, watcher, topic=topic if self.framed else None)

    def head(self, topic):
        return topic_head(topic) if self.framed else None

    def push(self, topic, text):
        """Send an event (its envelope text) of `topic` without waiting (any greenlet may push)."""
        self.ws.send_frame(text_frame(on_topic(self.head(topic), text.encode())))

    def send_history(self, topic, history):
        if history.messages:  # however big: a piece at a time, as the client reads (send_paced)
            self.ws.send_paced(history.frames_for(self.head(topic)))

    def end(self, topic, code, detail, rejoin):
        raise NotImplementedError


class Socket(ChannelSocket):
    """The realtime.v1 protocol on one connection (docs/protocol.md, Channels)."""

    def __init__(self, request, ws, user):
        super().__init__(request, ws, user)
        self.allowed_topics = None  # a token's topics (None: any the channels admit)
        self.topics = {}  # topic -> its Channel, while joined

    def authenticate(self, token):
        """Be the user of `token`, before the socket acts (it wins over the cookie); InvalidToken if it
        is not valid (its user, and the session it came from, are read in a database reader's turn)."""
        identity = run_read(lambda: read_token(token))
        self.user, self.allowed_topics = identity.user, identity.topics
        self.sessions = {session_mark(identity.session_key)}

    def refresh(self, token):
        """The `auth` frame: joins from now on are as `token` says (topics joined before stay).

        A socket is one user's, as Centrifugo refuses a refresh that changes the user: topics joined
        as an earlier user would stay open under the new one, and that user's `disconnect` would no
        longer find them. So another user's token is refused (that user opens another socket); an
        anonymous socket, which holds nothing anyone may not, may become anyone. The token's session
        is added to the socket's: a logout of any of them ends it.
        """
        identity = run_read(lambda: read_token(token))
        if self.user.is_authenticated and identity.user.pk != self.user.pk:
            raise InvalidToken("another_user", "This socket is another user's: open a new socket for this token.")
        sessions = self.sessions | {session_mark(identity.session_key)}
        if len(sessions) > MAX_SESSIONS:
            raise InvalidToken("too_many_sessions", f"This socket authenticated by {MAX_SESSIONS} sessions "
                                                    "already: open a new socket for this token.")
        self.user, self.allowed_topics, self.sessions = identity.user, identity.topics, sessions

    def run(self):
        self.enroll()
        try:
            while (message := self.ws.receive()) is not None:
                self.receive(message)
        finally:
            self.withdraw()
            for topic in list(self.topics):
                self.drop(topic)

    def receive(self, message):
        try:
            frame = frames.parse_frame(message)
        except frames.InvalidFrame as error:
            self.ws.send(frames.error_push(error, error.ref, error.topic, error.event))
            return
        channel = None
        try:
            if frame.topic == frames.SYSTEM_TOPIC:
                response = self.system(frame)
            elif frame.event == "join":
                return self.join(frame)
            elif frame.event == "leave":
                response = self.leave(frame)
            else:
                channel = self.joined(frame.topic)
                response = channel.handle(frame.event, frame.data)
        except ClientError as error:
            self.refuse(frame, error)
            self.hold_off_after(error)
        except Exception:
            log.exception("topic %s: event %s failed", frame.topic, frame.event)
            self.refuse(frame, ChannelError("internal_error", "The server failed to handle this event."))
        else:
            self.answer(frame, response)
        finally:
            if channel is not None:
                channel.replied()

    def answer(self, frame, response, **fields):
        if frame.ref is not None:
            self.ws.send(frames.reply(frame.topic, frame.ref, {} if response is None else response, **fields))

    def refuse(self, frame, error):
        if frame.ref is None:  # no reply to carry it: an error push, so that it does not pass unseen
            self.ws.send(frames.error_push(error, topic=frame.topic, event=frame.event))
        else:
            self.ws.send(frames.error_reply(frame.topic, frame.ref, error))

    # --- the system topic ---------------------------------------------------------------------

    def system(self, frame):
        if frame.event == "heartbeat":
            return {}
        if frame.event == "auth":
            token = frame.data.get("token")
            if not isinstance(token, str):
                raise ChannelError("unauthorized", '"token" must be a string.')
            try:
                self.refresh(token)
            except InvalidToken as error:
                raise error.as_channel_error() from None
            self.enroll()
            return {"user": {"id": self.user.pk, "username": self.user.get_username()}}
        raise ChannelError("unknown_event", f"The {frames.SYSTEM_TOPIC!r} topic has 'heartbeat' and 'auth', "
                                            f"not {frame.event!r}.")

    # --- topics -------------------------------------------------------------------------------

    def joined(self, topic):
        channel = self.topics.get(topic)
        if channel is None:
            raise ChannelError("not_joined", f"Join {topic!r} first.")
        return channel

    def join(self, frame):
        topic, data = frame.topic, frame.data
        if topic in self.topics:
            raise ChannelError("already_joined", f"{topic!r} is joined already; leave it first.")
        limit = conf.get("WEBSOCKET_MAX_TOPICS")
        if len(self.topics) >= limit:
            raise ChannelError("too_many_topics", f"At most {limit} topics on one socket: leave one first.")
        if not self.may_join(topic):
            raise Forbidden(f"This socket's token does not admit {topic!r}.")
        params, since = data.get("params", {}), data.get("since")
        if not isinstance(params, dict):
            raise ChannelError("invalid_frame", '"params" must be a JSON object.')
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise ChannelError("invalid_since", '"since" must be an offset: an integer, 0 or more.')
        try:
            channel_class, kwargs = get_router().resolve(topic)
        except UnknownTopic:
            raise ChannelError("unknown_topic", f"No channel serves {topic!r}.") from None
        self.spend_join()  # the checks above cost nothing; the channel's join reads and writes
        channel = channel_class(self, topic, kwargs)
        channel.since = since
        try:
            response = channel.join(params)
            if not channel.subscriptions and channel.subscribes:
                channel.subscribe()
        except BaseException:
            channel.close()  # a refused join leaves nothing behind
            raise
        self.topics[topic] = channel
        self.answer(frame, response, **channel.reply_fields())
        try:
            channel.joined()
        except Exception:  # after the ok reply: the topic ends, the client may join again
            log.exception("topic %s: joined() failed", topic)
            self.end(topic, "internal_error", "The server failed to start this topic.", rejoin=True)

    def may_join(self, topic):
        if self.allowed_topics is None:
            return True
        return admitted(topic, self.allowed_topics)

    def leave(self, frame):
        self.joined(frame.topic)
        self.drop(frame.topic)
        return {}

    def drop(self, topic):
        channel = self.topics.pop(topic, None)
        if channel is not None:
            try:
                channel.close()
            except Exception:
                log.exception("topic %s: leave failed", topic)

    def end(self, topic, code, detail, rejoin):
        if topic in self.topics:
            self.push(topic, envelope("close", {"code": code, "detail": detail, "rejoin": rejoin}))
            self.drop(topic)
