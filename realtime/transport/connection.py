"""The gevent shell around the core: one WebSocket connection, as a view sees it.

Views see `receive()`, `send()`, `close(code)` and `closed`, never the socket. Everything this
module decides is I/O: it reads, writes and sleeps; the `Core` decides what the bytes mean.

Fairness: under gevent a read that finds data waiting does not yield, so a peer that keeps
sending would keep this greenlet running and freeze every other socket of the worker. The shell
counts what it reads and hands out, and yields to the other greenlets every READ_BUDGET units.

One writer per socket: every byte leaves through `_write`. It sends at once when nothing is
queued (no greenlet switch on the common path); otherwise it appends to the core's bounded
outbox that a single writer greenlet drains. So two greenlets sending on one connection can
never interleave frames, and a client that stops reading fills only its own outbox.
"""

import fcntl
import logging
import socket
import struct
import termios
import time

import gevent
from gevent.event import Event
from geventwebsocket.exceptions import WebSocketError

from ..server.metrics import stats
from .codes import GOING_AWAY, INTERNAL_ERROR, NORMAL, TRY_AGAIN_LATER
from .core import Core

log = logging.getLogger("realtime.connection")

READ_SIZE = 65536
# Yield to the other greenlets after this much work without a pause: a message handed to the
# view counts one, a read one per 4 KiB (so at least every 256 KiB read, or 64 messages).
READ_BUDGET = 64
# How the shell yields: a timer, not sleep(0). gevent.sleep(0) lets ready greenlets run but may
# resume this one before the event loop polls for I/O, so sockets waiting to be read would still
# wait; any positive sleep resumes it only on the next loop iteration, after the poll.
YIELD_SECONDS = 0.0001
# Between two reads of a connection we failed, while its close frame goes out: at most 64 KiB
# per pause is discarded (6.4 MB/s), for at most the close timeout.
FAILED_READ_PAUSE = 0.01


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

    # Thousands per worker: named slots, no per-instance dict unless a view stores its own
    # attributes on the connection (`__dict__` is created only then).
    __slots__ = ("environ", "accepted", "core", "max_queue_messages", "_close_timeout", "before_wait", "_accept",
                 "_sock", "_raw", "_rfile", "_work", "_counted", "_writing", "_writer", "_wakeup", "_drained",
                 "_write_closed", "_dead", "__dict__", "__weakref__")

    def __init__(self, sock, rfile, environ, *, accept, limits, close_timeout, on_rate_limited=None):
        self.environ = environ
        self.accepted = False
        self.core = Core(limits, time.monotonic(), on_rate_limited)
        self.max_queue_messages = limits.max_queue_messages
        self._close_timeout = close_timeout
        # Called before each blocking read: the Django glue releases database connections here.
        self.before_wait = None
        self._accept = accept
        self._sock = sock
        # The real non-blocking socket under gevent's wrapper: `send` on it never yields.
        self._raw = getattr(sock, "_sock", None)
        # Holds what the HTTP parser read past the handshake, taken by the first read; every
        # read after that goes straight to the socket, skipping the buffered reader.
        self._rfile = rfile
        self._work = 0  # work done since this greenlet last yielded on purpose (READ_BUDGET)
        self._counted = False  # the close cause is in the metrics
        self._writing = False
        # The writer greenlet and its two events exist only once a write had to wait: most
        # connections never need them, and thousands of idle ones should not pay for them.
        self._writer = self._wakeup = self._drained = None
        self._write_closed = False  # our half of the TCP connection is shut: nothing more goes out
        self._dead = False

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
        self.accept()
        core = self.core
        while not core.messages:  # (a deque only once the core has a message)
            if self.closed:
                return None
            # _read_some(), inlined: every idle view waits in this read, and each frame under it
            # costs memory per connection (bench/memory.py).
            data = self._before_read()
            if not data:
                try:
                    data = self._sock.recv(READ_SIZE)
                except OSError:
                    data = b""
            self._take_input(data)
        message = core.messages.popleft()
        stats.messages_in += 1
        self._spend(1)
        return message

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
        self.core.send(message, binary)
        stats.messages_out += 1
        self._flush()
        self._wait_for_room()

    def send_frame(self, frame, messages=1):
        """Queue an already serialized server frame (or `messages` frames) without waiting (fan-out path).

        The hub serializes a message once for all its recipients. A recipient whose outbox
        is full is closed with 1013 instead of making the sender wait. Only for accepted
        connections (the hub accepts its members when they subscribe).
        """
        if self.closed:
            return False
        stats.messages_out += messages
        self._write(frame)
        if self.core.outbox and self.core.over_limit():
            self.abort(TRY_AGAIN_LATER, "slow consumer: outbound queue full", "slow_consumer")
            return False
        return True

    def ping(self, data=b""):
        if not self.closed:
            self.core.ping(time.monotonic(), data)
            self._flush()

    def close(self, code=NORMAL, reason=""):
        """Start the closing handshake; the handler finishes it when the view returns."""
        if self.accepted and not self.closed:
            self.core.close(code, reason)
            self._flush()

    def abort(self, code, reason, cause, linger=True):
        """Close at once without waiting for queued messages (slow, flooding or dead peer).

        The close frame goes out if the socket takes it; the TCP connection is cut after the
        close timeout (linger) or right away.
        """
        if self.closed and self.core.cause is not None:
            return  # already failed: one warning, one count and one timer per connection
        self.core.clear_queue()
        self.core.fail(code, reason, cause)
        self._count_failure()
        self._flush()
        if linger:
            gevent.spawn_later(self._close_timeout, self._shutdown)
        else:
            self._shutdown()

    def check_liveness(self, now, ping_interval, ping_timeout, idle_timeout):
        """Called about once a second by the connection sweeper (server/connections.py): ping, and drop the dead or idle."""
        if not self.accepted:
            return
        need = self.core.liveness(now, ping_interval, ping_timeout, idle_timeout)
        if need == "ping":
            self.ping()
        elif need == "idle":
            stats.count_close("idle")
            self.close(GOING_AWAY, "idle timeout")
        elif need == "dead":
            if self._unread_bytes():
                # Its answer is here, unread: this worker was too busy to read, the peer is alive.
                self.core.answered()
            else:
                self.abort(INTERNAL_ERROR, "keepalive ping timeout", "keepalive_timeout", linger=False)

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
            # What a peer we failed (a flood, a protocol error) still sends is only discarded, at a
            # trickle: reading it at all lets our close frame reach it (closing with its bytes
            # unread would reset the connection and lose the frame), but a flooder gets no CPU.
            while not self._dead and self.core.protocol.close_rcvd is None:
                self._read_some()
                if self.core.cause is not None:
                    gevent.sleep(FAILED_READ_PAUSE)
            # Let the writer send what is queued. Once the socket is dead nothing more can go
            # out, and `_drained` may be set while the writer still sits in a failing send:
            # waiting on it then would return at once, forever, without ever yielding.
            while not self._dead and (self.core.outbox or self._writing):
                self._drained.wait()
        self._shutdown()

    # --- reading ------------------------------------------------------------------------

    def _read_some(self):
        data = self._before_read()
        if not data:
            try:
                data = self._sock.recv(READ_SIZE)
            except OSError:
                data = b""
        self._take_input(data)

    def _before_read(self):
        """Release what a waiting view must not hold; the handshake's buffered bytes, if any."""
        if self.before_wait is not None:
            self.before_wait()
        # The first read takes what the HTTP parser buffered past the handshake; later reads go
        # straight to the socket.
        return self._take_buffered() if self._rfile is not None else None

    def _take_input(self, data):
        """Feed what was read (b"": the peer is gone), answer what it asks, budget the work."""
        if data:
            stats.bytes_in += len(data)
            self.core.receive_data(data, time.monotonic())
        else:
            self.core.receive_eof()
            self._dead = True
        self._count_failure()
        self._flush()
        if self.core.outbox and self.core.over_limit():
            # What we owe the peer (pongs, notices) piles up because it does not read.
            self.abort(TRY_AGAIN_LATER, "slow consumer: the client does not read our answers", "slow_consumer")
        if data:
            self._spend(1 + len(data) // 4096)

    def _spend(self, units):
        self._work += units
        if self._work >= READ_BUDGET:
            self._work = 0
            gevent.sleep(YIELD_SECONDS)

    def _take_buffered(self):
        """What the HTTP parser read past the handshake, taken without waiting (None: nothing).

        A blocking read1() would hold its 64 KiB result buffer for as long as the client stays
        silent; gevent's recv() allocates only once data is there. Later reads skip the reader.
        """
        rfile, self._rfile = self._rfile, None
        self._sock.settimeout(0.0)
        try:
            data = rfile.read1(READ_SIZE)  # buffered bytes, or None: nothing to read yet
        except OSError:
            data = None
        finally:
            self._sock.settimeout(None)
        return data

    def _count_failure(self):
        cause = self.core.cause
        if cause is not None and not self._counted:
            self._counted = True
            stats.count_close(cause)
            log.warning("closing %s with %s: %s", self.environ.get("PATH_INFO"), self.core.close_code, cause)

    # --- writing: the one writer ----------------------------------------------------------

    def _flush(self):
        for data in self.core.data_to_send():
            self._write(data)  # b"": end of stream, half-close after what is queued

    def _write(self, data):
        if self._dead or self._write_closed:
            return
        if not self.core.outbox and not self._writing and self._raw is not None:
            if not data:
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
        self.core.queue(data)
        if self._writer is None:
            self._wakeup, self._drained = Event(), Event()
            self._writer = gevent.spawn(self._write_loop)
        else:
            self._drained.clear()
            self._wakeup.set()

    def _write_loop(self):
        outbox = self.core.outbox
        try:
            while not self._dead and not self._write_closed:
                while outbox:
                    data = self.core.unqueue()
                    if not data:
                        self._shutdown_write()
                        break
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
            self.core.clear_queue()
            self._drained.set()

    def _wait_for_room(self):
        """The view's own sends wait (bounded) for a slow reader instead of overflowing."""
        if not self.core.over_limit():
            return
        if not self._drained.wait(self._close_timeout * 6):
            self.abort(TRY_AGAIN_LATER, "slow consumer: the client stopped reading", "slow_consumer")

    def _shutdown_write(self):
        self._write_closed = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _shutdown(self):
        """Cut the TCP connection; blocked reads return EOF and blocked writes fail."""
        self._dead = True
        self.core.clear_queue()
        if self._writer is not None:
            self._drained.set()
            self._wakeup.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
