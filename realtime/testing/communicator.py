"""Drive a WebSocket route in this process, with no server: a WebsocketCommunicator for `@websocket` views.

The view runs in a greenlet of the test's own thread, and its `ws` is an `InProcessWebSocket`
(in_process.py): the socket interface over the transport's own `Core` (the worker's framing,
limits and close codes), with in-memory pipes where the worker has a socket. This side speaks as a
browser does, through the client half of websockets' sans-I/O protocol (masked frames; pings
answered, a close echoed). The request goes through the worker's own application:
WEBSOCKET_URLCONF, middleware, the origin check, the route's size limit. Left out: the HTTP
handshake, the kernel's buffers (a slow reader), and the worker's open-connection list (no
keepalive pings, no idle timeout, no 503 when full).

Same thread, same database connection: the view sees what a TestCase wrote, inside its transaction.
"""

import collections
import time

import gevent
import gevent.event
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side

from .. import conf
from ..server.application import WebSocketApplication
from ..envelope import rate_limited_notice
from ..server.handler import connection_limits
from ..transport.codes import NORMAL
from .envelopes import EnvelopeCalls
from .in_process import InProcessWebSocket
from .waits import DEFAULT_TIMEOUT

UPGRADE_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


class WebsocketCommunicator(EnvelopeCalls):
    """One client connection to `path` (with `query` and extra `headers`, e.g. Cookie or Origin).

    `connect()`, then `send()`/`send_json()`, `receive()`/`receive_json()`/`receive_event()`/`receive_until()`,
    `receive_nothing()`, `close()` or `receive_close()` (both give the server's close code), and
    `disconnect()` at the end (or use it as a context manager, which connects and disconnects).
    """

    def __init__(self, path, query=None, headers=None, timeout=DEFAULT_TIMEOUT, user=None):
        """`user`: connect as this user, logged in as by the test client's `force_login` (a session
        in the database, its cookie on the upgrade request)."""
        self.timeout = timeout
        headers = {**UPGRADE_HEADERS, **(session_cookie(user) if user is not None else {}), **(headers or {})}
        self.environ = RequestFactory().get(path, query or {}, headers=headers).environ
        self.application = WebSocketApplication()  # WEBSOCKET_URLCONF as the settings say now
        self.connection = None
        self.status = None  # the HTTP status Django answered the upgrade with, when it refused it
        self.content = b""  # and that response's body
        self.close_code = self.close_reason = None  # of the server's close frame, once it came
        self._client = Protocol(Side.CLIENT, max_size=None)
        self._messages = collections.deque()
        self._fragments, self._opcode = [], None
        self._server = None
        self._eof = False

    # --- the connection ----------------------------------------------------------------------

    def connect(self, timeout=None):
        """Run the route until its view accepts the connection (True), or Django answers the
        upgrade with a plain response, as a worker would over HTTP (False; see `status`, `content`)."""
        accepted = gevent.event.Event()
        self.connection = InProcessWebSocket(
            self.environ, accept=accepted.set, limits=connection_limits(),
            close_timeout=conf.get("WEBSOCKET_CLOSE_TIMEOUT"), on_rate_limited=rate_limited_notice)
        self.environ["wsgi.websocket"] = self.connection
        self._server = gevent.spawn(self._serve)
        if not gevent.wait([accepted, self._server], timeout=timeout or self.timeout, count=1):
            raise AssertionError(f"{self.environ['PATH_INFO']}: the view neither accepted nor answered in time")
        return self.connection.accepted

    def disconnect(self, timeout=None):
        """Close (if still open), let the view and its closing handshake end, release everything."""
        if self._server is None:
            return
        if self.connection.accepted and self.close_code is None and not self._eof:
            self.close(timeout=timeout)
        self._server.join(timeout or self.timeout)
        self._server.kill()  # a view that ignores the close: the test is over

    def __enter__(self):
        if not self.connect():
            raise AssertionError(f"{self.environ['PATH_INFO']}: upgrade refused with {self.status}: "
                                 f"{self.content.decode(errors='replace')}")
        return self

    def __exit__(self, *exc_info):
        self.disconnect()

    def _serve(self):
        """The worker's part: the application (routing, middleware, the view), then the close."""
        _hold_database_connections(+1)
        try:
            result = self.application(self.environ, self._start_response)
            try:
                if self.connection.accepted:
                    self.connection.finish()
                else:
                    self.content = b"".join(result)
            finally:
                result.close()
        finally:
            _hold_database_connections(-1)

    def _start_response(self, status, headers, exc_info=None):
        if not self.connection.accepted:
            self.status = int(status.split()[0])

    # --- the client's side -------------------------------------------------------------------

    def send(self, message):
        """A text message for str, a binary one for bytes."""
        if isinstance(message, str):
            self._client.send_text(message.encode())
        else:
            self._client.send_binary(bytes(message))
        self._flush()

    def receive(self, timeout=None):
        """The next message (str or bytes); AssertionError if none comes in time or the server closes."""
        if not self._read_until(lambda: self._messages, timeout):
            if self.close_code is not None or self._eof:
                raise AssertionError(f"connection closed by the server: {self.close_code}")
            raise AssertionError(f"no message within {timeout or self.timeout} s")
        return self._messages.popleft()

    def receive_nothing(self, timeout=0.1):
        """True if no message comes within `timeout` s (and none is waiting)."""
        self._read_until(lambda: self._messages, timeout)
        return not self._messages

    def receive_close(self, timeout=None):
        """Read until the server's close frame (messages before it are dropped); its code, or None
        if the connection ended without one."""
        self._read_until(lambda: self.close_code is not None, timeout)
        return self.close_code

    def close(self, code=NORMAL, reason="", timeout=None):
        """Start the closing handshake as a client; the server's close code once it answered."""
        if self.close_code is None:
            self._client.send_close(code, reason)
            self._flush()
        return self.receive_close(timeout)

    # --- bytes ---------------------------------------------------------------------------------

    def _read_until(self, done, timeout):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not done():
            remaining = deadline - time.monotonic()
            if self._eof or remaining <= 0:
                return False
            data = self.connection.peer_receive(remaining)  # the view's greenlet runs while this waits
            if data is None:
                return False
            if data:
                self._client.receive_data(data)
            else:
                self._client.receive_eof()
                self._eof = True
            self._take_frames()
        return True

    def _take_frames(self):
        for frame in self._client.events_received():
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._opcode, self._fragments = frame.opcode, [frame.data]
            elif frame.opcode is Opcode.CONT:
                self._fragments.append(frame.data)
            else:
                continue  # a ping (the protocol queued its pong) or the close (below)
            if frame.fin:
                data = b"".join(self._fragments)
                self._messages.append(data.decode() if self._opcode is Opcode.TEXT else data)
        self._flush()  # pongs, the echo of the server's close
        close = self._client.close_rcvd
        if close is not None and self.close_code is None:
            self.close_code, self.close_reason = close.code, close.reason
            # Both close frames are out: end our half as clients do, or a server that failed the
            # connection (it discards what follows its close) waits its close timeout for the end.
            self._flush_eof()

    def _flush_eof(self):
        self.connection.peer_send(b"")

    def _flush(self):
        for data in self._client.data_to_send():
            self.connection.peer_send(data)  # b"": the end of our half


_serving = 0


def session_cookie(user):
    """{"Cookie": ...} of a session in which `user` is logged in."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return {"Cookie": f"{cookie.key}={cookie.value}"}


def _hold_database_connections(change):
    """Keep Django's request signals from closing the test's database connection (they would end
    a TestCase's transaction) while any communicator serves a request, as Django's test client does."""
    global _serving
    if change > 0 and _serving == 0:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
    _serving += change
    if change < 0 and _serving == 0:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
