"""The gevent side of a WebSocket request: handshake checks, then Django, then the close.

A subclass of gevent-websocket's WebSocketHandler (and of gunicorn's, for access logs).
It differs from its parent in one important way: the 101 response is sent only when the
view first uses the socket. Until then Django may still answer the upgrade request over
plain HTTP, so an unknown path gets a 404 and a refused one a 403, never an upgraded
connection that closes at once.
"""

import functools
import math
import random
import re
import socket

import gevent
from geventwebsocket.handler import WebSocketHandler as GeventWebSocketHandler
from gevent.pywsgi import WSGIHandler
from gunicorn.workers.ggevent import PyWSGIHandler, PyWSGIServer
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidHeader, InvalidProtocol
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.utils import accept_key

from .. import conf
from . import metrics, status
from ..envelope import rate_limited_notice
from .http_headers import read_headers
from ..transport import Connection, Limits
from .connections import open_connections

SUPPORTED_VERSION = "13"  # RFC 6455; the drafts gevent-websocket also takes (7, 8) are not served


def connection_limits():
    """The limits from the settings: one shared (immutable) Limits for every connection."""
    return _shared(Limits.from_settings())


@functools.lru_cache(maxsize=4)
def _shared(limits):
    return limits  # the first of equal Limits: thousands of connections hold one instance


class HandshakeTimeout(socket.timeout):
    """The client did not finish its request in time (a socket error: gevent just drops the connection)."""


# The headers websockets' server handshake reads, as (environ key, header name).
HANDSHAKE_HEADERS = [("HTTP_" + name.upper().replace("-", "_"), name) for name in (
    "Connection", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Origin",
    "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol")]
# Its checks keep no state that matters between requests (only what it negotiated, which we do
# not read), and a greenlet does not switch inside them: one instance serves every upgrade.
HANDSHAKE_CHECKS = ServerProtocol()


def handshake_request(environ, request_version):
    """The upgrade request as websockets' server handshake sees it."""
    headers = Headers()
    for key, name in HANDSHAKE_HEADERS:
        value = environ.get(key)
        if value is not None:
            headers[name] = value
    return Request(environ.get("PATH_INFO", "/"), headers, environ.get("REQUEST_METHOD", "GET"), request_version)


# A key as every client makes it: 16 random bytes in base64.
PLAIN_KEY = re.compile(r"[A-Za-z0-9+/]{22}==\Z")
# Subprotocol offers as clients write them: tokens (RFC 7230) separated by commas ("realtime.v1, realtime.bearer.x").
PLAIN_OFFERS = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[-!#$%&'*+.^_`|~0-9A-Za-z]+)*\Z")


def plainly_valid(environ, request_version):
    """True for the upgrade request browsers and client libraries send, which websockets' checks
    pass: they cost more than the rest of the handshake, so only other requests go through them."""
    return (request_version == "HTTP/1.1"
            and environ.get("HTTP_CONNECTION", "").lower() in ("upgrade", "keep-alive, upgrade")
            and environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            and environ.get("HTTP_SEC_WEBSOCKET_VERSION") == SUPPORTED_VERSION
            and PLAIN_OFFERS.match(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "-")) is not None
            and PLAIN_KEY.match(environ.get("HTTP_SEC_WEBSOCKET_KEY", "")) is not None)


def handshake_error(environ, request_version):
    """The HTTP error for a malformed upgrade request, as (status, body, extra headers), or None.

    The checks (method, HTTP/1.1, Connection, Upgrade, the key, the version) are websockets'
    own server handshake, as the Autobahn suite tests it; we only choose the answer.
    """
    if plainly_valid(environ, request_version):
        return None
    try:
        HANDSHAKE_CHECKS.process_request(handshake_request(environ, request_version))
    except InvalidProtocol:
        return "400 Bad Request", "WebSocket upgrades need HTTP/1.1.", []
    except InvalidHeader as error:
        if error.name == "Sec-WebSocket-Version":
            return ("426 Upgrade Required",
                    f"Unsupported Sec-WebSocket-Version {error.value!r}; this server speaks 13.",
                    [("Sec-WebSocket-Version", SUPPORTED_VERSION)])
        return "400 Bad Request", f"Not a valid WebSocket upgrade: {error}.", []
    except InvalidHandshake as error:
        return "400 Bad Request", f"Not a valid WebSocket upgrade: {error}.", []
    return None


def retry_after():
    """Seconds a turned-away client should wait (Retry-After): spread over the reconnect window,
    so that a crowd told to come back does not come back at once."""
    return str(random.randint(1, max(1, math.ceil(conf.get("CLIENT_RECONNECT_WINDOW")))))


class WebSocketServer(PyWSGIServer):
    """gunicorn's gevent WSGI server, running each connection's handler under a handshake timer.

    A slow or silent client must not hold a connection slot before it has even asked: the
    handler closes the timer once the request is read. This replaces pywsgi's handle() (which
    only makes the handler and runs it) instead of wrapping the handler's methods, because a
    wrapper would stay on the stack of every parked view (see bench/memory.py).
    """

    def handle(self, sock, address):
        handler = self.handler_class(sock, address, self)
        handler.handshake_timer = gevent.Timeout.start_new(conf.get("WEBSOCKET_HANDSHAKE_TIMEOUT"), HandshakeTimeout)
        try:
            handler.handle()
        finally:
            handler.handshake_timer.close()


class RequestHandler(GeventWebSocketHandler, PyWSGIHandler):
    """gevent-websocket's handler with a deferred, validated handshake and our Connection.

    Served by WebSocketServer, which times the handshake (realtime.worker sets both).
    """

    websocket = None
    handshake_timer = None
    # The request line and headers are read through this buffer, which then lives as long as the
    # connection: 1 KiB rather than the default 8 KiB per idle socket (long headers take more reads).
    READ_BUFFER = 1024

    def __init__(self, sock, address, server, rfile=None):
        super().__init__(sock, address, server, rfile or sock.makefile("rb", self.READ_BUFFER))

    MessageClass = staticmethod(read_headers)  # the headers, without the email parser when they are plain

    def _handle_client_error(self, ex):
        if isinstance(ex, HandshakeTimeout):  # the request line came, the headers did not
            return ("408", b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        return super()._handle_client_error(ex)

    def run_application(self):
        if self.handshake_timer is not None:
            self.handshake_timer.close()  # the request is read
        self.close_connection = True
        path = self.environ.get("PATH_INFO")
        if not self.is_upgrade_request():
            if path in status.PATHS:
                return self.send_worker_status(path)
            # Plain HTTP: Django answers (426 on a WebSocket route, 404 elsewhere).
            return WSGIHandler.run_application(self)
        error = handshake_error(self.environ, self.request_version)
        if error:
            return self.send_plain_response(*error)
        refusal = self.refusal()
        if refusal:
            metrics.stats.count_close(refusal[0])
            return self.send_plain_response("503 Service Unavailable", refusal[1], [("Retry-After", retry_after())])
        self.websocket = Connection(
            self.socket, self.rfile, self.environ, accept=self.accept, limits=connection_limits(),
            close_timeout=conf.get("WEBSOCKET_CLOSE_TIMEOUT"), on_rate_limited=rate_limited_notice)
        self.environ["wsgi.websocket"] = self.websocket
        self.environ["wsgi.websocket_version"] = SUPPORTED_VERSION
        if conf.get("WEBSOCKET_SEND_BUFFER"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, conf.get("WEBSOCKET_SEND_BUFFER"))
        open_connections.add(self.websocket)
        # Counted until the view accepts (the 101: accept()) or ends without accepting. No flag
        # on the handler for it: one more attribute grows the handler's __dict__ by 1.5 KB.
        open_connections.handshakes += 1
        try:
            # Through the bound __call__: calling the application object recurses in C
            # (slot_tp_call), ~720 bytes more of C stack saved for every parked view.
            self.result = self.application.__call__(self.environ, self.start_response)
            if self.websocket.accepted:
                self.websocket.finish()
            else:
                self.send_refusal()
        finally:
            if not self.websocket.accepted:
                open_connections.handshakes -= 1
            open_connections.discard(self.websocket)
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
            self.result = None
            self.environ["wsgi.websocket"] = None

    def refusal(self):
        """(reason, message) when this worker must turn an upgrade away with 503, else None."""
        if open_connections.draining:  # SIGTERM: the clients it is closing must come back elsewhere
            return "shutting_down", "This worker is shutting down; reconnect (another worker will take you)."
        if len(open_connections) >= conf.get("WEBSOCKET_MAX_CONNECTIONS"):
            return "max_connections", "This worker is at its connection limit; try another or retry later."
        if open_connections.handshakes >= conf.get("WEBSOCKET_MAX_HANDSHAKES"):
            # A storm: queueing more joins would only make every one of them slower.
            return "busy", "This worker has too many connections opening at once; retry in a moment."
        return None

    def accept(self):
        """The view accepted (Connection.accept, once): the handshake is over, send the 101."""
        open_connections.handshakes -= 1
        self.send_switching_protocols()

    def send_worker_status(self, path):
        """/healthz and /metrics (realtime/server/status.py)."""
        status_line, headers, body = status.page(path)
        WSGIHandler.start_response(self, status_line, headers)
        self.write(body)

    def is_upgrade_request(self):
        return (self.environ.get("REQUEST_METHOD") == "GET"
                and self.environ.get("HTTP_UPGRADE", "").lower() == "websocket")

    def send_plain_response(self, status_line, body, headers):
        body = body.encode()
        self.close_connection = True
        WSGIHandler.start_response(self, status_line, headers + [
            ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        self.write(body)

    def send_refusal(self):
        """Django refused the upgrade: its (small) response goes out as HTTP, with a Content-Length
        (gevent counts the body of a list), whatever middleware ran."""
        response = self.result
        self.result = [b"".join(response)]
        try:
            self.process_result()
        finally:
            self.result = response  # closed by run_application: Django's request_finished

    def send_switching_protocols(self):
        accept = accept_key(self.environ["HTTP_SEC_WEBSOCKET_KEY"].strip()).encode()
        # The fixed 101 as bytes: gevent's response path (checks of each header, a Date) cost more
        # than this whole write. Its state says what was sent, for the access log.
        self.status, self.code = b"101 Switching Protocols", 101
        self.response_headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Accept", accept)]
        # The subprotocol the view chose among the client's offers (realtime/channels/endpoint.py), if any.
        protocol = self.environ.get("realtime.subprotocol")
        if protocol:
            self.response_headers.append((b"Sec-WebSocket-Protocol", protocol.encode()))
        self.headers_sent = self.connection_upgraded = True
        self.response_use_chunked, self.close_connection = False, True
        self._sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n"
                      + (b"Sec-WebSocket-Protocol: " + protocol.encode() + b"\r\n" if protocol else b"")
                      + b"\r\n")  # the socket now speaks WebSocket

    def start_response(self, status, headers, exc_info=None):
        if self.websocket is not None and self.websocket.accepted:
            # The view has ended an upgraded connection; its HttpResponse has nowhere to go.
            return lambda data: None
        return WSGIHandler.start_response(self, status, headers, exc_info)

    def log_request(self):
        PyWSGIHandler.log_request(self)
