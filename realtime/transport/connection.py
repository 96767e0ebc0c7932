"""The gevent shell around the core: a WebSocket connection on a gevent socket, in the worker.

Views see the interface of `WebSocket` (websocket.py), never the socket. This module only does
I/O: it reads, writes and sleeps, and carries out what the `Core` decides.

Fairness: under gevent a read that finds data waiting does not yield, so a peer that keeps
sending would keep this greenlet running and freeze every other socket of the worker. The shell
counts what it reads and hands out, and yields to the other greenlets every READ_BUDGET units.

One writer per socket: every byte leaves through `_write`. It sends at once when nothing is
queued (no greenlet switch on the common path); otherwise it appends to the core's bounded send
queue, which a single writer greenlet drains. So two greenlets sending on one connection can
never interleave frames, and a client that stops reading fills only its own queue.
"""

import fcntl
import socket
import struct
import termios

import gevent
from gevent.event import Event

from ..server.metrics import stats
from .websocket import ConnectionClosed, WebSocket

__all__ = ["Connection", "ConnectionClosed"]

READ_SIZE = 65536
# Yield to the other greenlets after this much work without a pause: a message handed to the
# view counts one, a read one per 4 KiB (so at least every 256 KiB read, or 64 messages).
READ_BUDGET = 64
# How the shell yields: a timer, not sleep(0). gevent.sleep(0) lets ready greenlets run but may
# resume this one before the event loop polls for I/O, so sockets waiting to be read would still
# wait; any positive sleep resumes it only on the next loop iteration, after the poll.
YIELD_SECONDS = 0.0001
# A view's send waits this many close timeouts for a slow reader before the core gives up on it.
SEND_WAIT_CLOSE_TIMEOUTS = 6


class Connection(WebSocket):
    """A server-side WebSocket connection on a gevent socket.

    Created by the handler before the 101 response is sent: the handshake completes on the
    first `receive()`/`send()` (or an explicit `accept()`), so Django can still answer the
    upgrade request with an ordinary 403 or 404 before that.
    """

    __slots__ = ("_sock", "_raw", "_rfile", "_work", "_writing", "_writer", "_wakeup", "_drained", "_write_closed")

    def __init__(self, sock, rfile, environ, *, accept, limits, close_timeout, on_rate_limited=None):
        super().__init__(environ, accept=accept, limits=limits, close_timeout=close_timeout,
                         on_rate_limited=on_rate_limited)
        self._sock = sock
        # The real non-blocking socket under gevent's wrapper: `send` on it never yields.
        self._raw = getattr(sock, "_sock", None)
        # Holds what the HTTP parser read past the handshake, taken by the first read; every
        # read after that goes straight to the socket, skipping the buffered reader.
        self._rfile = rfile
        self._work = 0  # work done since this greenlet last yielded on purpose (READ_BUDGET)
        self._writing = False  # the writer is in a send: the chunk it took goes out before anything else
        # The writer greenlet and its two events exist only once a write had to wait: most
        # connections never need them, and thousands of idle ones should not pay for them.
        self._writer = self._wakeup = self._drained = None
        self._write_closed = False  # our half of the TCP connection is shut: nothing more goes out

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

    def check_liveness(self, now, ping_interval, ping_timeout, idle_timeout):
        """Called about once a second by the connection sweeper (server/connections.py): the core
        pings, closes the idle and drops the dead."""
        if self.accepted:
            self._carry_out(self.core.liveness(now, ping_interval, ping_timeout, idle_timeout, self._unread_bytes))

    def _unread_bytes(self):
        """Bytes from the peer waiting in the kernel for our reader (0 if unknown)."""
        try:
            return struct.unpack("i", fcntl.ioctl(self._sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            return 0

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

    # --- writing: the one writer ----------------------------------------------------------

    def _write(self, data):
        if self._dead or self._write_closed:
            return
        core = self.core
        sent = 0
        if not core.pending and not self._writing and self._raw is not None:
            if not data:
                self._shutdown_write()
                return
            try:
                sent = self._raw.send(data)
                stats.bytes_out += sent
            except BlockingIOError:
                pass
            except OSError:
                self._dead = True
                return
            if sent == len(data):
                return
            data = data[sent:]
        # The rest of a chunk the socket took part of goes out before anything else (core.queue).
        core.queue(data, partly_sent=sent > 0)
        if self._writer is None:
            self._wakeup, self._drained = Event(), Event()
            self._writer = gevent.spawn(self._write_loop)
        else:
            self._drained.clear()
            self._wakeup.set()

    def _write_loop(self):
        core = self.core
        try:
            while not self._dead and not self._write_closed:
                while core.pending:
                    data = core.take_pending()
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
            core.drop_pending()
            self._drained.set()

    def _wait_for_room(self, timeout=None):
        """A view's own send waits, bounded, for a slow reader instead of overflowing."""
        return self._drained.wait(self._close_timeout * SEND_WAIT_CLOSE_TIMEOUTS if timeout is None else timeout)

    def _drain(self):
        # Let the writer send what is queued. Once the socket is dead nothing more can go out,
        # and `_drained` may be set while the writer still sits in a failing send: waiting on it
        # then would return at once, forever, without ever yielding.
        while not self._dead and (self.core.pending or self._writing):
            self._drained.wait()

    def _shutdown_write(self):
        self._write_closed = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _cut(self):
        """Cut the TCP connection; blocked reads return EOF and blocked writes fail."""
        self._dead = True
        self.core.drop_pending()
        if self._writer is not None:
            self._drained.set()
            self._wakeup.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
