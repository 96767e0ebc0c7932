"""The socket-free core of a server WebSocket connection: bytes in, messages, bytes and actions out.

No sockets, no gevent, no clock of its own: the caller (a shell: `Connection` on a gevent socket,
or the in-process test double) feeds the bytes it read with the time it read them
(`receive_data(data, now)`), takes complete messages from `messages`, writes what `data_to_send()`
returns, keeps what the socket did not take in the core's send queue (`queue`, `take_pending`), and
carries out the *action* each call returns (below). Every decision about a connection is made here,
so it is tested without a server: framing (the `websockets` sans-I/O `Protocol`: masking, UTF-8 and
close-code rules), what a view may send, reassembly limits, the budgets, liveness, and the slow
consumer.

Budgets: every frame costs (one token, plus one per 64 KiB), whatever its kind — pings, pongs and
empty continuations too, which never complete a message — and a peer over the frame budget is
closed with 1008. Whole messages have their own budget, which drops a message over it with a
notice (the `on_rate_limited` hook) and closes with 1008 if the flood goes on.

Slow consumer: what waits to be sent to one socket (its send queue, and the frames held for it
while it syncs: `hold`) is bounded in messages and bytes. Past the bound, fan-out and what we owe
the peer (pongs, notices) close it with 1013 at once — nobody waits on one socket — while a
view's own send waits for room (the shell bounds the wait) and closes it only if none comes.

A socket that took part of a chunk must get the rest before anything else: a close frame in the
middle of a frame is garbage to the client (it sees 1006, not our code). So closing at once keeps
that rest at the head of the queue, and the shell either finishes it (within the close timeout)
or cuts the TCP connection; it never writes anything in between.
"""

import collections
import logging
import random
from dataclasses import dataclass, field, fields
from typing import NamedTuple

from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from .. import conf
from .codes import (GOING_AWAY, INTERNAL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG, POLICY_VIOLATION, PROTOCOL_ERROR,
                    TRY_AGAIN_LATER)

# websockets' core logs every normal close at INFO; its warnings still show.
_core_log = logging.getLogger("websockets.server")

# A fragmented message may have at most this many frames (each costs a list slot until the last).
MAX_FRAGMENTS = 1024
# One frame token per frame, plus one per this many payload bytes.
BYTES_PER_FRAME_TOKEN = 65536

# Why the protocol core failed a connection, for the metrics.
FAILURE_CAUSES = {PROTOCOL_ERROR: "protocol_error", INVALID_DATA: "invalid_data", MESSAGE_TOO_BIG: "message_too_big",
                  INTERNAL_ERROR: "internal_error"}


def _setting(name):
    """A limit read from setting `name`, whose default is the setting's (realtime/conf.py)."""
    return field(default=conf.DEFAULTS[name], metadata={"setting": name})


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_size: int = _setting("WEBSOCKET_MAX_MESSAGE_SIZE")
    rate: float = _setting("WEBSOCKET_RATE_LIMIT")  # messages per second; 0: no limit
    burst: float = _setting("WEBSOCKET_RATE_BURST")
    frame_rate: float = _setting("WEBSOCKET_FRAME_RATE")  # frames per second, of every kind; 0: no limit
    frame_burst: float = _setting("WEBSOCKET_FRAME_BURST")
    max_queue_bytes: int = _setting("WEBSOCKET_MAX_QUEUE_BYTES")
    max_queue_messages: int = _setting("WEBSOCKET_MAX_QUEUE_MESSAGES")

    @classmethod
    def from_settings(cls):
        """The limits the project's settings give (conf.get)."""
        return cls(**{limit.name: conf.get(limit.metadata["setting"]) for limit in fields(cls)})


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved; a rate of 0 never runs dry."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate, burst, now):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), now

    def take(self, now, cost=1):
        if not self.rate:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class ServerProtocol(Protocol):
    """websockets' server protocol, with the close handshake allowed between fragments.

    RFC 6455 5.4 lets control frames come between the fragments of a message; a close frame
    there ends the connection normally (the message is simply never completed). websockets
    answers it with 1002 instead.
    """

    def recv_frame(self, frame):
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None
        super().recv_frame(frame)


# --- actions: what the shell does after a core call (None: nothing) ----------------------------

class Action:
    """An action without arguments; compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


SEND = Action("SEND")  # write what data_to_send() returns
# A view's send found the send queue full: wait (bounded) for it to drain, then tell waited_for_room().
WAIT_FOR_ROOM = Action("WAIT_FOR_ROOM")

# When the shell cuts the TCP connection after a Closing.
LINGER = "after the close timeout"  # what the socket began (and our close frame) may still go out
NOW = "now"


class Closing(NamedTuple):
    """The core closed the connection and framed its close frame: count `cause` in the metrics (and
    log it when `warn`: the peer broke a rule), write what the core framed, then cut the TCP
    connection `cut` (LINGER or NOW; None: the closing handshake and the view's end finish it)."""

    cause: str
    cut: str | None = None
    warn: bool = True


IDLE = Closing("idle", warn=False)
SLOW_CONSUMER_REASON = "slow consumer: send queue full"

# Between two reads of a connection we failed, while its close frame goes out: one read per pause
# (64 KiB; 6.4 MB/s), for at most the close timeout.
FAILED_READ_PAUSE = 0.01

# An empty queue before the first item: a deque costs ~750 bytes, and thousands of idle
# connections never receive a message or queue a write.
NOTHING = ()


class Core:
    # One per connection, thousands per worker: no per-instance dict.
    __slots__ = ("limits", "protocol", "messages", "last_seen", "last_message", "ping_sent_at", "ping_share",
                 "_message_budget", "_frame_budget", "_dropped", "_warned_at", "on_rate_limited", "_fragments",
                 "_fragment_opcode", "pending", "pending_bytes", "held", "partly_sent", "cause")

    def __init__(self, limits, now, on_rate_limited=None):
        self.limits = limits
        self.protocol = ServerProtocol(Side.SERVER, max_size=limits.max_message_size, logger=_core_log)
        self.messages = NOTHING  # complete messages, a deque once there is one: str (text) or bytes (binary)
        # Liveness: any bytes from the peer (a pong too) vs. a whole message.
        self.last_seen = self.last_message = now
        self.ping_sent_at = None
        # Ping after 50-100 % of the interval: clients that joined together are not all pinged,
        # and do not all answer, in the same second.
        self.ping_share = random.uniform(0.5, 1.0)
        self._message_budget = TokenBucket(limits.rate, limits.burst, now)
        self._frame_budget = TokenBucket(limits.frame_rate, limits.frame_burst, now)
        self._dropped = 0  # messages over the budget in a row
        self._warned_at = None
        # Called with the message rate when a message is dropped (at most once a second): returns
        # the text to send the client, or None. The transport knows no application envelope.
        self.on_rate_limited = on_rate_limited
        self._fragments = []
        self._fragment_opcode = None
        # The send queue, a deque once something waits: bytes the socket did not take yet, in order
        # (b"": half-close after them). Its bounds also count the frames held for this socket (hold).
        self.pending = NOTHING
        self.pending_bytes = 0  # of the queue and the held frames
        self.held = 0  # frames held for this socket (a paused subscription's)
        self.partly_sent = False  # the queue's first chunk is the rest of one the socket took part of
        self.cause = None  # why we failed the connection, once we did: "rate_limited", ...

    # --- state ------------------------------------------------------------------------------

    @property
    def closed(self):
        return self.protocol.state is not State.OPEN

    @property
    def close_code(self):
        """The code of the close frame received (or sent, if ours came first)."""
        frame = self.protocol.close_rcvd or self.protocol.close_sent
        return frame.code if frame else None

    @property
    def peer_closed(self):
        """The peer's close frame came: the closing handshake is complete once ours is out."""
        return self.protocol.close_rcvd is not None

    @property
    def max_message_size(self):
        return self.protocol.max_message_size

    @max_message_size.setter
    def max_message_size(self, size):
        # Read by the parser at each frame header: a route may lower it before the first message.
        self.protocol.max_message_size = size

    def read_pause(self):
        """Seconds between two reads while the shell waits for the peer's close frame: none,
        unless we failed the peer. Then what it still sends is only discarded, at a trickle:
        reading it at all lets our close frame reach it (closing with its bytes unread would reset
        the connection and lose the frame), but a flooder gets no CPU."""
        return FAILED_READ_PAUSE if self.cause is not None else 0

    # --- bytes in ---------------------------------------------------------------------------

    def receive_data(self, data, now):
        """Bytes read at `now`. Returns SEND (pongs, a notice, our close), a Closing (we failed the
        peer), or None."""
        self.last_seen = now
        self.protocol.receive_data(data)
        return self._take_frames(now)

    def receive_eof(self):
        """The peer ended the TCP connection."""
        self.protocol.receive_eof()
        return self._take_frames(self.last_seen)

    def _take_frames(self, now):
        cause = self.cause
        for frame in self.protocol.events_received():
            if self.closed and self.cause is not None:
                break  # we failed it: what came after is not looked at
            if not self._frame_budget.take(now, 1 + len(frame.data) // BYTES_PER_FRAME_TOKEN):
                self._fail(POLICY_VIOLATION, "too many frames", "frame_flood")
                break
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    self._complete(opcode, frame.data, now)
                else:
                    self._fragment_opcode, self._fragments = opcode, [frame.data]
            elif opcode is Opcode.CONT:
                self._fragments.append(frame.data)
                if frame.fin:
                    data, self._fragments = b"".join(self._fragments), []
                    self._complete(self._fragment_opcode, data, now)
                elif len(self._fragments) > MAX_FRAGMENTS:
                    self._fail(MESSAGE_TOO_BIG, f"more than {MAX_FRAGMENTS} fragments", "message_too_big")
            elif opcode is Opcode.CLOSE:
                self._fragments = []
            # PING is answered and CLOSE echoed by the protocol; PONG only proves life.
        failure = self.protocol.parser_exc
        # A peer that vanished mid-stream (EOF without a close frame) broke no rule of ours.
        if failure is not None and self.cause is None and not isinstance(failure, EOFError):
            self.cause = FAILURE_CAUSES.get(self.close_code, "protocol_error")
        if cause is None and self.cause is not None:
            return Closing(self.cause)
        return SEND if self.protocol.writes else None

    def _complete(self, opcode, data, now):
        self.last_message = now
        if self.closed or not self._within_message_budget(now):
            return
        try:
            message = bytes(data) if opcode is Opcode.BINARY else bytes(data).decode()
        except UnicodeDecodeError:
            self._fail(INVALID_DATA, "invalid UTF-8 in a text message", "invalid_data")
            return
        if self.messages is NOTHING:
            self.messages = collections.deque()
        self.messages.append(message)

    def _within_message_budget(self, now):
        if self._message_budget.take(now):
            self._dropped = 0
            return True
        self._dropped += 1
        if self._dropped > self.limits.burst:
            self._fail(POLICY_VIOLATION, "rate limit exceeded", "rate_limited")
        elif self.on_rate_limited is not None and (self._warned_at is None or now - self._warned_at >= 1.0):
            self._warned_at = now
            notice = self.on_rate_limited(self.limits.rate)
            if notice is not None:
                self.protocol.send_text(notice.encode())
        return False

    # --- bytes out --------------------------------------------------------------------------

    def send(self, message, binary=None):
        """Frame a view's message: str as text, bytes-like as binary (or as text with
        binary=False: then it must be UTF-8, refused here rather than by the peer). Raises
        TypeError or UnicodeDecodeError, having framed nothing; returns SEND."""
        if binary is None:
            binary = not isinstance(message, str)
        if isinstance(message, str):
            message = message.encode()
        elif not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"send() takes str or bytes, not {type(message).__name__}")
        elif not binary:
            bytes(message).decode()
        if binary:
            self.protocol.send_binary(message)
        else:
            self.protocol.send_text(message)
        return SEND

    def ping(self, now, data=b""):
        self.ping_sent_at = now
        self.protocol.send_ping(data)
        return SEND

    def close(self, code, reason=""):
        """Start the closing handshake (SEND), unless it is closed or closing (None)."""
        if self.closed:
            return None
        self.protocol.send_close(code, reason)
        return SEND

    def abort(self, code, reason, cause, cut=LINGER):
        """Close at once for `cause` (a slow, flooding or dead peer, or the application's own
        reason): what waits in the send queue is dropped, but the rest of a chunk the socket took
        part of. Returns the Closing, or None if we failed the connection already (one count and
        one cut per connection)."""
        if self.closed and self.cause is not None:
            return None
        self._drop_pending(keep_partly_sent=True)
        self._fail(code, reason, cause)
        return Closing(cause, cut)

    def _fail(self, code, reason, cause):
        """Close because of the peer (or for our own reasons): nothing more is read."""
        if self.cause is None:
            self.cause = cause
        if self.messages:
            self.messages.clear()
        self._fragments = []
        if not self.closed:
            self.protocol.fail(code, reason)

    def data_to_send(self):
        """The bytes to write, in order; b"" means: half-close the connection after them."""
        return self.protocol.data_to_send()

    # --- the send queue and the slow consumer -----------------------------------------------

    def queue(self, data, partly_sent=False):
        """Keep bytes the socket did not take (b"": half-close after them). `partly_sent`: the
        socket took the first part of this chunk, so the rest must go out before anything else."""
        if self.pending is NOTHING:
            self.pending = collections.deque()
        self.pending.append(data)
        self.pending_bytes += len(data)
        if partly_sent:
            self.partly_sent = True

    def take_pending(self):
        """The next chunk to write (b"": half-close now): the writer's to finish from now on."""
        data = self.pending.popleft()
        self.pending_bytes -= len(data)
        self.partly_sent = False
        return data

    def drop_pending(self):
        """The TCP connection is cut: nothing more goes out."""
        self._drop_pending(keep_partly_sent=False)

    def _drop_pending(self, keep_partly_sent):
        pending = self.pending
        if not pending:
            return
        kept = pending[0] if keep_partly_sent and self.partly_sent else None
        self.pending_bytes -= sum(map(len, pending))
        pending.clear()
        self.partly_sent = False
        if kept is not None:
            self.queue(kept, partly_sent=True)

    def overflow(self, may_wait=False):
        """The slow-consumer rule, asked when something waits in the send queue. None within its
        bounds; past them WAIT_FOR_ROOM for a sender that may wait (a view's own send), else the
        Closing (1013): fan-out and what we owe the peer never wait on one socket."""
        limits = self.limits
        if (self.pending_bytes <= limits.max_queue_bytes
                and len(self.pending) + self.held <= limits.max_queue_messages):
            return None
        if may_wait:
            return WAIT_FOR_ROOM
        return self.abort(TRY_AGAIN_LATER, SLOW_CONSUMER_REASON, "slow_consumer")

    def waited_for_room(self, drained):
        """A view's send waited (WAIT_FOR_ROOM) as long as it may: if the queue `drained` the
        client reads, and the send goes on, even if another sender filled the queue again since;
        if not, the Closing (1013)."""
        if drained:
            return None
        return self.abort(TRY_AGAIN_LATER, SLOW_CONSUMER_REASON, "slow_consumer")

    def hold(self, size):
        """Count a frame of `size` bytes kept for this socket until it may be sent (a paused
        subscription's, until `release`) against the send queue's bounds. Returns the Closing when
        it does not fit: the frame is then not held."""
        self.held += 1
        self.pending_bytes += size
        action = self.overflow()
        if action is not None:
            self.release(size)
        return action

    def release(self, size):
        """A held frame was sent or dropped."""
        self.held -= 1
        self.pending_bytes -= size

    # --- liveness ---------------------------------------------------------------------------

    def liveness(self, now, ping_interval, ping_timeout, idle_timeout, unread_bytes):
        """What the connection needs now: a ping (SEND), the close of an idle one (1001), the
        abort of a dead one (no answer to our ping in time: 1011, cut now), or None.

        `unread_bytes()` says how many bytes from the peer wait unread in our socket buffer; it is
        asked only of a peer that seems dead: those bytes are its answer (this worker was too
        busy to read them), and it lives.
        """
        if self.closed:
            return None
        if idle_timeout and now - self.last_message > idle_timeout:
            self.protocol.send_close(GOING_AWAY, "idle timeout")
            return IDLE
        if self.ping_sent_at is not None and self.last_seen < self.ping_sent_at:
            if now - self.ping_sent_at <= ping_timeout:
                return None  # waiting for the answer
            if unread_bytes():
                self.ping_sent_at = None
                return None
            return self.abort(INTERNAL_ERROR, "keepalive ping timeout", "keepalive_timeout", cut=NOW)
        if now - self.last_seen >= ping_interval * self.ping_share:
            return self.ping(now)
        return None
