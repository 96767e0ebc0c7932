"""What a view's `ws` is: the socket interface, and what every shell around the core shares.

Views, and the hub, use this interface and never a socket:

    accept()                      answer the handshake (the 101); the first receive() or send() does it
    receive()                     the next message: str (text) or bytes (binary); None once closed
    send(message, binary=None)    str as text, bytes-like as binary; ConnectionClosed once closed
    close(code=1000, reason="")   start the closing handshake
    closed, close_code            a close frame was sent or received (or the socket is gone); its code
    environ                       the request's WSGI environ (a view is also given the request)
    max_message_size              the limit of incoming messages (a route may lower it before the first)
    send_frame(frame, messages=1) already serialized frames, never waiting (fan-out); False once closed
    send_paced(frames)            already serialized frames of any total size (a backlog), a piece at a time
    wait_drained(timeout)         wait (at most `timeout` s) for what is queued to be written (paced fan-out)
    hold(frame), release(frame)   a frame kept for this socket until it may be sent (a paused subscription)
    abort(code, reason, cause)    close at once, without waiting for what is queued

Two shells implement it: `Connection` (connection.py), on a gevent socket in the worker, and
`realtime.testing`'s `InProcessWebSocket`, which feeds the same core from a test. The core
(core.py) decides; a shell reads, writes, sleeps, and carries out the core's actions
(`_carry_out`). A shell provides `receive()` and its I/O: `_read_some()`, `_write(data)`,
`_cut()`, and, when its writes can wait, `_wait_for_room()` and `_drain()`.
"""

import logging
import time

import gevent
from geventwebsocket.exceptions import WebSocketError

from ..server.metrics import stats
from .codes import NORMAL
from .core import LINGER, NOW, SEND, WAIT_FOR_ROOM, Core

log = logging.getLogger("realtime.connection")

# send_paced puts about this much in the send queue at a time (whole frames), then waits for it to drain.
PACED_PIECE_BYTES = 256 * 1024


class ConnectionClosed(WebSocketError):
    """send() on a connection that is closed or closing.

    A subclass of gevent-websocket's WebSocketError, so views written for it keep working;
    a view that lets it escape simply ends.
    """


class WebSocket:
    """A server-side WebSocket connection as views see it, over a `Core`; a shell adds the I/O."""

    # Thousands per worker: named slots, no per-instance dict unless a view stores its own
    # attributes on the connection (`__dict__` is created only then).
    __slots__ = ("environ", "accepted", "core", "before_wait", "_accept", "_close_timeout", "_dead",
                 "__dict__", "__weakref__")

    def __init__(self, environ, *, accept, limits, close_timeout, on_rate_limited=None):
        self.environ = environ
        self.accepted = False
        self.core = Core(limits, time.monotonic(), on_rate_limited)
        # Called before each blocking read: the Django glue releases database connections here.
        self.before_wait = None
        self._accept = accept  # sends the 101
        self._close_timeout = close_timeout
        self._dead = False  # the TCP connection is gone: nothing more is read or written

    # --- what views use -------------------------------------------------------------------

    @property
    def closed(self):
        """True once a close frame was sent or received, or the socket is gone."""
        return self._dead or self.core.closed

    @property
    def close_code(self):
        """The code of the close frame received (or sent, if ours came first)."""
        return self.core.close_code

    @property
    def max_message_size(self):
        return self.core.max_message_size

    @max_message_size.setter
    def max_message_size(self, size):
        self.core.max_message_size = size

    def accept(self):
        """Send the 101 response; later calls do nothing."""
        if not self.accepted:
            self.accepted = True
            self._accept()
            stats.connections_opened += 1

    def receive(self):
        """The next message: `str` for text, `bytes` for binary; `None` once closed."""
        raise NotImplementedError

    def send(self, message, binary=None):
        """Send `str` as text and bytes-like as binary (or as text, with binary=False).

        Waits (bounded) while the client is slow to read, rather than letting the queue overflow.
        """
        self.accept()
        if self.closed:
            raise ConnectionClosed("the connection is closed")
        core = self.core
        self._carry_out(core.send(message, binary))
        stats.messages_out += 1
        if core.pending:
            action = core.overflow(may_wait=True)
            if action is WAIT_FOR_ROOM:
                action = core.waited_for_room(self._wait_for_room())
            self._carry_out(action)

    def close(self, code=NORMAL, reason=""):
        """Start the closing handshake; the handler finishes it when the view returns."""
        if self.accepted and not self.closed:
            self._carry_out(self.core.close(code, reason))

    # --- what the hub uses ----------------------------------------------------------------

    def send_frame(self, frame, messages=1):
        """Send already serialized server frames (`messages` of them) without ever waiting.

        The fan-out path: the hub serializes a message once for all its recipients. A recipient
        the core finds too slow is closed (1013) instead of making the sender wait. Only for
        accepted connections (the hub accepts its members when they subscribe). False once closed.
        """
        if self.closed:
            return False
        stats.messages_out += messages
        self._write(frame)
        if self.core.pending:
            action = self.core.overflow()
            if action is not None:
                self._carry_out(action)
                return False
        return True

    def send_paced(self, frames):
        """Send already serialized frames that may add up to more than the send queue holds (a
        joiner's backlog: 1,000 chat messages of 2,000 escaped characters are 12 MB): a piece of whole
        frames at a time, the next once the queue drained, waiting like a view's `send()` (bounded:
        a client that stops reading is closed 1013). Other frames may go out between two pieces,
        never inside a frame. False once closed."""
        piece, size = [], 0
        for frame in frames:
            piece.append(frame)
            size += len(frame)
            if size >= PACED_PIECE_BYTES:
                if not self._send_piece(piece):
                    return False
                piece, size = [], 0
        return self._send_piece(piece) if piece else not self.closed

    def _send_piece(self, frames):
        if not self.send_frame(b"".join(frames), messages=len(frames)):
            return False
        if self.core.pending and not self._wait_for_room():
            self._carry_out(self.core.waited_for_room(False))
            return False
        return True

    def wait_drained(self, timeout):
        """Wait at most `timeout` s for what waits in the send queue to be written: True if it was
        (at once when nothing waits). A hub pacing a backlog to many members waits on each in turn."""
        return not self.core.pending or self._wait_for_room(timeout)

    def hold(self, frame):
        """Count `frame`, kept elsewhere for this socket until it may be sent, against its send
        queue's bounds: False when it does not fit (the connection is then closed, 1013) or the
        connection is closed. Each frame held is `release`d once sent or dropped."""
        if self.closed:
            return False
        action = self.core.hold(len(frame))
        if action is None:
            return True
        self._carry_out(action)
        return False

    def release(self, frame):
        self.core.release(len(frame))

    def abort(self, code, reason, cause, linger=True):
        """Close at once without waiting for queued messages (slow, flooding or dead peer).

        The close frame goes out if the socket takes it; the TCP connection is cut after the
        close timeout (linger) or right away.
        """
        self._carry_out(self.core.abort(code, reason, cause, LINGER if linger else NOW))

    # --- what the handler uses ------------------------------------------------------------

    def finish(self):
        """After the view returns: complete the closing handshake, bounded in time."""
        if not self.accepted:
            return
        self.close(NORMAL)
        core = self.core
        with gevent.Timeout(self._close_timeout, False):
            # Both close frames exchanged: the server closes the TCP connection (RFC 6455 7.1.1).
            while not self._dead and not core.peer_closed:
                self._read_some()
                pause = core.read_pause()
                if pause:
                    gevent.sleep(pause)
            self._drain()
        self._cut()

    # --- carrying out the core's decisions --------------------------------------------------

    def _take_input(self, data):
        """Feed what was read (b"": the peer is gone) to the core, and do what it decides."""
        core = self.core
        if data:
            stats.bytes_in += len(data)
            action = core.receive_data(data, time.monotonic())
        else:
            action = core.receive_eof()
            self._dead = True
        if action is not None:
            self._carry_out(action)
        if core.pending:  # what we owe the peer (pongs, notices) piles up when it does not read
            self._carry_out(core.overflow())
        if data:
            self._spend(1 + len(data) // 4096)

    def _carry_out(self, action):
        """Do what the core decided: write what it framed (SEND), or a Closing."""
        if action is SEND:
            self._flush()
        elif action is not None:
            stats.count_close(action.cause)
            if action.warn:
                log.warning("closing %s with %s: %s", self.environ.get("PATH_INFO"), self.core.close_code,
                            action.cause)
            self._flush()
            if action.cut == NOW:
                self._cut()
            elif action.cut == LINGER:
                gevent.spawn_later(self._close_timeout, self._cut)

    def _flush(self):
        for data in self.core.data_to_send():
            self._write(data)  # b"": end of stream, half-close after what is queued

    # --- the shell's I/O ----------------------------------------------------------------------

    def _read_some(self):
        """Wait for bytes from the peer and `_take_input` them."""
        raise NotImplementedError

    def _write(self, data):
        """Write `data` after what waits in the core's send queue (b"": half-close after it)."""
        raise NotImplementedError

    def _cut(self):
        """End the connection: blocked reads see its end, nothing more goes out."""
        raise NotImplementedError

    def _spend(self, units):
        """Count work done without waiting (a read: one per 4 KiB; a message handed out: one), for
        a shell that must yield to others now and then."""

    def _wait_for_room(self, timeout=None):
        """Wait, bounded (by `timeout` s, or the send wait), for the send queue to drain: True if it
        did (a shell whose writes never wait: at once)."""
        return True

    def _drain(self):
        """Wait for the send queue to go out, once the view has returned (bounded by the caller)."""
