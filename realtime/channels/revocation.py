"""Ending a user's sockets on every worker: close code 4403 (`disconnected`: do not reconnect as
this user), for a logout, a ban, a password change.

`disconnect(user)` publishes one message on the control channel, which every worker process that
has authenticated sockets listens to (one subscription per process, not per socket or user); each
closes its own sockets of that user. A logout (`user_logged_out`) ends the sockets of that session
only: those opened with its cookie, or with a token it issued.
"""

import json
import logging

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.utils.crypto import salted_hmac

from ..fanout.brokers import BrokerUnavailable, publish as broker_publish
from ..fanout.hub import REPEAT, ChannelWatcher, get_hub

log = logging.getLogger("realtime.channels")

CONTROL_CHANNEL = "realtime:control"
DISCONNECTED = 4403  # close code: the server ended this user's sessions


def session_mark(session_key):
    """What names a session in control messages and here: a digest, never the key itself."""
    return None if session_key is None else salted_hmac("realtime.channels.session", session_key).hexdigest()[:24]


def disconnect(user, session_key=None, detail="Your sessions were ended."):
    """Close `user`'s sockets (a user or its pk) on every worker with 4403; with `session_key`, only
    those of that session. Raises BrokerUnavailable when the broker cannot be reached."""
    broker_publish(CONTROL_CHANNEL, json.dumps({"user": str(getattr(user, "pk", user)),
                                                "session": session_mark(session_key), "detail": detail}))


@receiver(user_logged_out)
def end_the_session_s_sockets(sender, request, user, **kwargs):
    if user is None or getattr(request, "session", None) is None:
        return
    try:
        disconnect(user, request.session.session_key, "This session logged out.")
    except BrokerUnavailable:
        log.warning("the sockets of user %s's session that logged out stay open: the broker is unavailable", user.pk)


class Registry:
    """This process's authenticated sockets, by their one user (an `auth` never changes it:
    sockets.py); the control channel's listener. A logout ends the sockets that authenticated by
    its session (`socket.sessions`)."""

    def __init__(self):
        self.sockets = {}  # user pk (str) -> the set of its sockets
        self.listening = False

    def add(self, socket, user_pk):
        if not self.listening:
            self.listening = True
            get_hub().subscribe(CONTROL_CHANNEL, Ear(), watcher=ControlWatcher)
        self.sockets.setdefault(str(user_pk), set()).add(socket)

    def discard(self, socket, user_pk):
        sockets = self.sockets.get(str(user_pk))
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.sockets[str(user_pk)]

    def end(self, message):
        for socket in list(self.sockets.get(message["user"], ())):
            if message["session"] is None or message["session"] in socket.sessions:
                socket.ws.close(DISCONNECTED, message["detail"][:120])


registry = Registry()


class ControlWatcher(ChannelWatcher):
    """Sees each control message once per process, acts on it, and has it sent to nobody."""

    def saw(self, payload):
        try:
            registry.end(json.loads(payload))
        except (ValueError, KeyError, TypeError):
            log.warning("a control message that is not one: %r", payload[:200])
        return REPEAT


class Ear:
    """The process's member of the control channel: a listener, not a socket (its watcher acts)."""

    max_queue_messages = 0
    closed = False

    def accept(self):
        pass

    def send_frame(self, frame, messages=1):
        pass

    def abort(self, *args, **kwargs):
        pass
