"""The socket-free core of a server WebSocket connection: bytes in, messages and bytes out.

No sockets, no gevent, no clock of its own: the caller feeds the bytes it read with the time it
read them (`receive_data(data, now)`), takes complete messages from `messages`, and writes what
`data_to_send()` returns. Everything a connection decides lives here, so it can be tested without
a server: framing (the `websockets` sans-I/O `Protocol`: masking, UTF-8 and close-code rules),
reassembly limits, the budgets, liveness, and the accounting of the outbound queue.

Budgets: every frame costs (one token, plus one per 64 KiB), whatever its kind — pings, pongs and
empty continuations too, which never complete a message — and a peer over the frame budget is
closed with 1008. Whole messages have their own budget, which drops a message over it with a
notice (the `on_rate_limited` hook) and closes with 1008 if the flood goes on.
"""

import collections
import logging
import random
from dataclasses import dataclass, field, fields

from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from .. import conf
from .codes import INTERNAL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG, POLICY_VIOLATION, PROTOCOL_ERROR

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


# An empty queue before the first item: a deque costs ~750 bytes, and thousands of idle
# connections never receive a message or queue a write.
NOTHING = ()


class Core:
    # One per connection, thousands per worker: no per-instance dict.
    __slots__ = ("limits", "protocol", "messages", "last_seen", "last_message", "ping_sent_at", "ping_share",
                 "_message_budget", "_frame_budget", "_dropped", "_warned_at", "on_rate_limited", "_fragments",
                 "_fragment_opcode", "outbox", "queued_bytes", "cause")

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
        # The outbound queue, a deque once something waits: bytes the socket did not take yet
        # (b"": half-close after them).
        self.outbox = NOTHING
        self.queued_bytes = 0
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
    def max_message_size(self):
        return self.protocol.max_message_size

    @max_message_size.setter
    def max_message_size(self, size):
        # Read by the parser at each frame header: a route may lower it before the first message.
        self.protocol.max_message_size = size

    # --- bytes in ---------------------------------------------------------------------------

    def receive_data(self, data, now):
        self.last_seen = now
        self.protocol.receive_data(data)
        self._take_frames(now)

    def receive_eof(self):
        self.protocol.receive_eof()
        self._take_frames(self.last_seen)

    def _take_frames(self, now):
        for frame in self.protocol.events_received():
            if self.closed and self.cause is not None:
                break  # we failed it: what came after is not looked at
            if not self._frame_budget.take(now, 1 + len(frame.data) // BYTES_PER_FRAME_TOKEN):
                self.fail(POLICY_VIOLATION, "too many frames", "frame_flood")
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
                    self.fail(MESSAGE_TOO_BIG, f"more than {MAX_FRAGMENTS} fragments", "message_too_big")
            elif opcode is Opcode.CLOSE:
                self._fragments = []
            # PING is answered and CLOSE echoed by the protocol; PONG only proves life.
        failure = self.protocol.parser_exc
        # A peer that vanished mid-stream (EOF without a close frame) broke no rule of ours.
        if failure is not None and self.cause is None and not isinstance(failure, EOFError):
            self.cause = FAILURE_CAUSES.get(self.close_code, "protocol_error")

    def _complete(self, opcode, data, now):
        self.last_message = now
        if self.closed or not self._within_message_budget(now):
            return
        try:
            message = bytes(data) if opcode is Opcode.BINARY else bytes(data).decode()
        except UnicodeDecodeError:
            self.fail(INVALID_DATA, "invalid UTF-8 in a text message", "invalid_data")
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
            self.fail(POLICY_VIOLATION, "rate limit exceeded", "rate_limited")
        elif self.on_rate_limited is not None and (self._warned_at is None or now - self._warned_at >= 1.0):
            self._warned_at = now
            notice = self.on_rate_limited(self.limits.rate)
            if notice is not None:
                self.protocol.send_text(notice.encode())
        return False

    # --- bytes out --------------------------------------------------------------------------

    def send(self, message, binary):
        """Frame a message (bytes-like; `binary` chooses the opcode)."""
        if binary:
            self.protocol.send_binary(message)
        else:
            self.protocol.send_text(message)

    def ping(self, now, data=b""):
        self.ping_sent_at = now
        self.protocol.send_ping(data)

    def close(self, code, reason=""):
        if not self.closed:
            self.protocol.send_close(code, reason)

    def fail(self, code, reason, cause):
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

    # --- the outbound queue -----------------------------------------------------------------

    def queue(self, data):
        if self.outbox is NOTHING:
            self.outbox = collections.deque()
        self.outbox.append(data)
        if data:
            self.queued_bytes += len(data)

    def unqueue(self):
        data = self.outbox.popleft()
        if data:
            self.queued_bytes -= len(data)
        return data

    def clear_queue(self):
        if self.outbox:
            self.outbox.clear()  # in place: the writer holds this deque
        self.queued_bytes = 0

    def over_limit(self):
        return (self.queued_bytes > self.limits.max_queue_bytes
                or len(self.outbox) > self.limits.max_queue_messages)

    # --- liveness ---------------------------------------------------------------------------

    def liveness(self, now, ping_interval, ping_timeout, idle_timeout):
        """What the connection needs now: "idle" (close 1001), "dead" (no answer to our ping
        in time), "ping", or None."""
        if self.closed:
            return None
        if idle_timeout and now - self.last_message > idle_timeout:
            return "idle"
        if self.ping_sent_at is not None and self.last_seen < self.ping_sent_at:
            return "dead" if now - self.ping_sent_at > ping_timeout else None
        if now - self.last_seen >= ping_interval * self.ping_share:
            return "ping"
        return None

    def answered(self):
        """The peer is alive though we have not read its answer yet (it waits in our buffer)."""
        self.ping_sent_at = None

