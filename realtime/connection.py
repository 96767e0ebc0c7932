"""The transport: one WebSocket connection, as a view sees it.

Framing, masking, UTF-8 and close-code rules are done by the sans-I/O protocol core of the
`websockets` library (RFC 6455 checked against the Autobahn suite, masking in C); this module
only moves bytes between that core and the gevent socket. Views see `receive()`, `send()`,
`close(code)` and `closed`, never the socket.

One writer per socket: every byte leaves through `_write`. It sends at once when nothing is
queued (no greenlet switch on the common path); otherwise it appends to a bounded outbox that
a single writer greenlet drains. So two greenlets sending on one connection can never
interleave frames, and a client that stops reading fills only its own outbox.
"""

import collections
import fcntl
import logging
import random
import socket
import struct
import termios
import time

import gevent
from gevent.event import Event
from geventwebsocket.exceptions import WebSocketError
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from .envelope import envelope
from .metrics import stats

log = logging.getLogger("realtime.connection")

READ_SIZE = 65536
# websockets' sans-I/O core logs every normal close at INFO; its warnings still show.
_core_log = logging.getLogger("websockets.server")

# RFC 6455 close codes this layer sends.
NORMAL = 1000
GOING_AWAY = 1001
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013

# Why the protocol core failed a connection, for the metrics.
FAILURE_REASONS = {1002: "protocol_error", 1007: "invalid_data", 1009: "message_too_big", 1011: "internal_error"}


class ConnectionClosed(WebSocketError):
    """send() on a connection that is closed or closing.

    A subclass of gevent-websocket's WebSocketError, so views written for it keep working;
    a view that lets it escape simply ends.
    """


class Connection:
    """A server-side WebSocket connection on a gevent socket.

    Created by the handler before the 101 response is sent: the handshake completes on the
    first `receive()`/`send()` (or an explicit `accept()`), so Django can still answer the
    upgrade request with an ordinary 403 or 404 before that.
    """

    def __init__(self, sock, rfile, environ, *, accept, max_message_size, max_queue_bytes,
                 max_queue_messages, close_timeout, rate_limit=0, rate_burst=0):
        self.environ = environ
        self.accepted = False
        self.protocol = Protocol(Side.SERVER, max_size=max_message_size, logger=_core_log)
        # Liveness: any bytes from the peer (a pong too) vs. a whole message.
        self.last_seen = self.last_message = time.monotonic()
        self._ping_sent_at = None
        # Ping after 50-100 % of the interval: clients that joined together are not all pinged,
        # and do not all answer, in the same second.
        self._ping_share = random.uniform(0.5, 1.0)
        # Token bucket for incoming messages (rate_limit messages/s, bursts of rate_burst).
        self._rate, self._burst = rate_limit, rate_burst
        self._tokens, self._tokens_at = float(rate_burst), self.last_seen
        self._dropped = 0
        self._warned_at = 0.0
        self._failure_counted = False
        # Called before each blocking read: the Django glue releases database connections here.
        self.before_wait = None
        self._accept = accept
        self._sock = sock
        # The real non-blocking socket under gevent's wrapper: `send` on it never yields.
        self._raw = getattr(sock, "_sock", None)
        # The first read drains what the HTTP parser buffered past the handshake; later ones go
        # straight to the socket, skipping the buffered reader.
        self._read = self._read_buffered_first
        self._rfile = rfile
        self._messages = collections.deque()
        self._fragments = []
        self._fragment_opcode = None
        self._max_queue_bytes = max_queue_bytes
        self.max_queue_messages = max_queue_messages
        self._close_timeout = close_timeout
        self._outbox = collections.deque()
        self._queued_bytes = 0
        self._writing = False
        # The writer greenlet and its two events exist only once a write had to wait: most
        # connections never need them, and thousands of idle ones should not pay for them.
        self._writer = self._wakeup = self._drained = None
        self._dead = False

    # --- what views use -------------------------------------------------------------------

    @property
    def closed(self):
        """True once a close frame was sent or received, or the socket is gone."""
        return self._dead or self.protocol.state is not State.OPEN

    @property
    def close_code(self):
        """The code of the close frame received (or sent, if ours came first)."""
        frame = self.protocol.close_rcvd or self.protocol.close_sent
        return frame.code if frame else None

    def accept(self):
        """Send the 101 response; later calls do nothing."""
        if not self.accepted:
            self.accepted = True
            self._accept()
            stats.connections_opened += 1

    def receive(self):
        """The next message: `str` for text, `bytes` for binary; `None` once closed."""
        self.accept()
        while not self._messages:
            if self.closed:
                return None
            self._read_some()
        return self._messages.popleft()

    def send(self, message, binary=None):
        """Send `str` as text and bytes-like as binary (or as text, with binary=False)."""
        self.accept()
        if self.closed:
            raise ConnectionClosed("the connection is closed")
        if binary is None:
            binary = not isinstance(message, str)
        if isinstance(message, str):
            message = message.encode()
        elif not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"send() takes str or bytes, not {type(message).__name__}")
        elif not binary:
            bytes(message).decode()  # a text message must be UTF-8: fail here, not at the peer
        if binary:
            self.protocol.send_binary(message)
        else:
            self.protocol.send_text(message)
        stats.messages_out += 1
        self._flush()
        self._wait_for_room()

    def send_frame(self, frame):
        """Queue an already serialized server frame without waiting (fan-out path).

        The hub serializes a message once for all its recipients. A recipient whose outbox
        is full is closed with 1013 instead of making the sender wait. Only for accepted
        connections (the hub accepts its members when they subscribe).
        """
        if self.closed:
            return False
        stats.messages_out += 1
        self._write(frame)
        if self._outbox and self._over_limit():
            self.abort(TRY_AGAIN_LATER, "slow consumer: outbound queue full", "slow_consumer")
            return False
        return True

    def ping(self, data=b""):
        if not self.closed:
            self.protocol.send_ping(data)
            self._flush()

    def close(self, code=NORMAL, reason=""):
        """Start the closing handshake; the handler finishes it when the view returns."""
        if self.accepted and not self.closed:
            self.protocol.send_close(code, reason)
            self._flush()

    def abort(self, code, reason, cause, linger=True):
        """Close at once without waiting for queued messages (slow, flooding or dead peer).

        The close frame goes out if the socket takes it; the TCP connection is cut after the
        close timeout (linger) or right away.
        """
        log.warning("closing %s with %s: %s", self.environ.get("PATH_INFO"), code, reason)
        stats.count_close(cause)
        self._outbox.clear()
        self._queued_bytes = 0
        if not self.closed:
            self.protocol.fail(code, reason)
            self._flush()
        if linger:
            gevent.spawn_later(self._close_timeout, self._shutdown)
        else:
            self._shutdown()

    def check_liveness(self, now, ping_interval, ping_timeout, idle_timeout):
        """Called about once a second by the registry's sweeper: ping, and drop the dead or idle."""
        if self.closed or not self.accepted:
            return
        if idle_timeout and now - self.last_message > idle_timeout:
            stats.count_close("idle")
            self.close(GOING_AWAY, "idle timeout")
        elif self._ping_sent_at is not None and self.last_seen < self._ping_sent_at:
            if now - self._ping_sent_at > ping_timeout:
                if self._unread_bytes():
                    # Its answer is here, unread: this worker was too busy to read, the peer is alive.
                    self._ping_sent_at = None
                    return
                self.abort(INTERNAL_ERROR, "keepalive ping timeout", "keepalive_timeout", linger=False)
        elif now - self.last_seen >= ping_interval * self._ping_share:
            self._ping_sent_at = now
            self.ping()

    def _unread_bytes(self):
        """Bytes from the peer waiting in the kernel for our reader (0 if unknown)."""
        try:
            return struct.unpack("i", fcntl.ioctl(self._sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            return 0

    # --- what the handler uses ------------------------------------------------------------

    def finish(self):
        """After the view returns: complete the closing handshake, bounded in time."""
        if not self.accepted:
            return
        self.close(NORMAL)
        with gevent.Timeout(self._close_timeout, False):
            # Both close frames exchanged: the server closes the TCP connection (RFC 6455 7.1.1).
            while not self._dead and self.protocol.close_rcvd is None:
                self._read_some()
            while (self._outbox or self._writing) and not self._dead:  # dead: _drained is set, do not spin
                self._drained.wait()
        self._shutdown()

    # --- reading ------------------------------------------------------------------------

    def _read_some(self):
        if self.before_wait is not None:
            self.before_wait()
        try:
            data = self._read(READ_SIZE)
        except OSError:
            data = b""
        if data:
            self.last_seen = time.monotonic()
            stats.bytes_in += len(data)
            self.protocol.receive_data(data)
            self._take_events()
            if self.protocol.parser_exc is not None and not self._failure_counted:
                self._failure_counted = True
                stats.count_close(FAILURE_REASONS.get(self.close_code, "protocol_error"))
        else:
            self.protocol.receive_eof()
            self._dead = True
        self._flush()

    def _read_buffered_first(self, size):
        """What the HTTP parser read past the handshake, taken without waiting.

        A blocking read1() would hold its `size` result buffer for as long as the client stays
        silent: 64 KiB on every idle connection. gevent's recv() allocates only once data is there.
        """
        self._read = self._sock.recv
        self._sock.settimeout(0.0)
        try:
            data = self._rfile.read1(size)  # buffered bytes, or None: nothing to read yet
        except OSError:
            data = None
        finally:
            self._sock.settimeout(None)
        return data if data else self._sock.recv(size)

    def _take_events(self):
        for frame in self.protocol.events_received():
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    self._deliver(opcode, frame.data)
                else:
                    self._fragment_opcode, self._fragments = opcode, [frame.data]
            elif opcode is Opcode.CONT:
                self._fragments.append(frame.data)
                if frame.fin:
                    self._deliver(self._fragment_opcode, b"".join(self._fragments))
                    self._fragments = []
            # PING is answered and CLOSE echoed by the protocol core; PONG only proves life.

    def _deliver(self, opcode, data):
        self.last_message = self.last_seen
        if self.closed or (self._rate and not self._take_token()):
            return
        stats.messages_in += 1
        if opcode is Opcode.BINARY:
            self._messages.append(bytes(data))
            return
        try:
            self._messages.append(bytes(data).decode())
        except UnicodeDecodeError:
            self.protocol.fail(INVALID_DATA, "invalid UTF-8 in a text message")
            stats.count_close("invalid_data")

    def _take_token(self):
        """The rate limit: drop a message over it with an `error` event; close 1008 if the flood goes on."""
        now = self.last_seen
        self._tokens = min(self._burst, self._tokens + (now - self._tokens_at) * self._rate)
        self._tokens_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            self._dropped = 0
            return True
        self._dropped += 1
        if self._dropped > self._burst:
            self.abort(POLICY_VIOLATION, "rate limit exceeded", "rate_limited")
        elif now - self._warned_at >= 1.0:
            self._warned_at = now
            self.protocol.send_text(envelope("error", {
                "code": "rate_limited",
                "detail": f"Too many messages: at most {self._rate:g} per second. This one was dropped; "
                          f"keep flooding and the connection is closed (1008)."}).encode())
        return False

    # --- writing: the one writer ----------------------------------------------------------

    def _flush(self):
        for data in self.protocol.data_to_send():
            if data:
                self._write(data)
            else:
                self._write(None)  # end of stream: half-close after what is queued

    def _write(self, data):
        if self._dead:
            return
        if not self._outbox and not self._writing and self._raw is not None:
            if data is None:
                self._shutdown_write()
                return
            try:
                sent = self._raw.send(data)
                stats.bytes_out += sent
            except BlockingIOError:
                sent = 0
            except OSError:
                self._dead = True
                return
            if sent == len(data):
                return
            data = data[sent:]
        self._outbox.append(data)
        self._queued_bytes += len(data) if data else 0
        if self._writer is None:
            self._wakeup, self._drained = Event(), Event()
            self._writer = gevent.spawn(self._write_loop)
        else:
            self._drained.clear()
            self._wakeup.set()

    def _write_loop(self):
        try:
            while not self._dead:
                while self._outbox:
                    data = self._outbox.popleft()
                    if data is None:
                        self._shutdown_write()
                        return
                    self._queued_bytes -= len(data)
                    self._writing = True
                    self._sock.sendall(data)
                    stats.bytes_out += len(data)
                    self._writing = False
                self._drained.set()
                self._wakeup.clear()
                self._wakeup.wait()
        except OSError:
            self._dead = True
        finally:
            self._writing = False
            self._outbox.clear()
            self._queued_bytes = 0
            self._drained.set()

    def _over_limit(self):
        return (self._queued_bytes > self._max_queue_bytes
                or len(self._outbox) > self.max_queue_messages)

    def _wait_for_room(self):
        """The view's own sends wait (bounded) for a slow reader instead of overflowing."""
        if not self._over_limit():
            return
        if not self._drained.wait(self._close_timeout * 6):
            self.abort(TRY_AGAIN_LATER, "slow consumer: the client stopped reading", "slow_consumer")

    def _shutdown_write(self):
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _shutdown(self):
        """Cut the TCP connection; blocked reads return EOF and blocked writes fail."""
        self._dead = True
        self._outbox.clear()
        if self._writer is not None:
            self._drained.set()
            self._wakeup.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
