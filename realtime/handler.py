"""The gevent side of a WebSocket request: handshake checks, then Django, then the close.

A subclass of gevent-websocket's WebSocketHandler (and of gunicorn's, for access logs).
It differs from its parent in one important way: the 101 response is sent only when the
view first uses the socket. Until then Django may still answer the upgrade request over
plain HTTP, so an unknown path gets a 404 and a refused one a 403, never an upgraded
connection that closes at once.
"""

import base64
import binascii
import hashlib
import json
import math
import random
import socket

import gevent
from geventwebsocket.handler import WebSocketHandler as GeventWebSocketHandler
from gevent.pywsgi import WSGIHandler
from gunicorn.workers.ggevent import PyWSGIHandler

from . import conf, metrics
from .broker import get_broker
from .connection import Connection
from .registry import registry

SUPPORTED_VERSION = "13"  # RFC 6455; the drafts gevent-websocket also takes (7, 8) are not served


class HandshakeTimeout(socket.timeout):
    """The client did not finish its request in time (a socket error: gevent just drops the connection)."""


def handshake_error(environ, request_version):
    """The HTTP error for a malformed upgrade request, as (status, body, extra headers), or None."""
    if request_version != "HTTP/1.1":
        return "400 Bad Request", "WebSocket upgrades need HTTP/1.1.", []
    if "upgrade" not in environ.get("HTTP_CONNECTION", "").lower():
        return "400 Bad Request", "A WebSocket upgrade needs 'Connection: Upgrade'.", []
    version = environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip()
    if version != SUPPORTED_VERSION:
        return ("426 Upgrade Required", f"Unsupported Sec-WebSocket-Version {version!r}; this server speaks 13.",
                [("Sec-WebSocket-Version", SUPPORTED_VERSION)])
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid_key = False
    if not valid_key:
        return "400 Bad Request", "Sec-WebSocket-Key must be 16 bytes in base64.", []
    return None


def retry_after():
    """Seconds a turned-away client should wait (Retry-After): spread over the reconnect window,
    so that a crowd told to come back does not come back at once."""
    return str(random.randint(1, max(1, math.ceil(conf.get("CLIENT_RECONNECT_WINDOW")))))


class WebSocketHandler(GeventWebSocketHandler, PyWSGIHandler):
    """gevent-websocket's handler with a deferred, validated handshake and our Connection."""

    websocket = None
    # The request line and headers are read through this buffer, which then lives as long as the
    # connection: 1 KiB rather than the default 8 KiB per idle socket (long headers take more reads).
    READ_BUFFER = 1024

    def __init__(self, sock, address, server, rfile=None):
        super().__init__(sock, address, server, rfile or sock.makefile("rb", self.READ_BUFFER))

    def handle_one_request(self):
        # A slow or silent client must not hold a connection slot before it has even asked.
        self.handshake_timer = gevent.Timeout.start_new(conf.get("WEBSOCKET_HANDSHAKE_TIMEOUT"), HandshakeTimeout)
        try:
            return super().handle_one_request()
        finally:
            self.handshake_timer.close()

    def _handle_client_error(self, ex):
        if isinstance(ex, HandshakeTimeout):  # the request line came, the headers did not
            return ("408", b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        return super()._handle_client_error(ex)

    def run_application(self):
        self.handshake_timer.close()  # the request is read
        self.close_connection = True
        path = self.environ.get("PATH_INFO")
        if not self.is_upgrade_request():
            if path in ("/healthz", "/metrics"):
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
            self.socket, self.rfile, self.environ, accept=self.accept,
            max_message_size=conf.get("WEBSOCKET_MAX_MESSAGE_SIZE"),
            max_queue_bytes=conf.get("WEBSOCKET_MAX_QUEUE_BYTES"),
            max_queue_messages=conf.get("WEBSOCKET_MAX_QUEUE_MESSAGES"),
            close_timeout=conf.get("WEBSOCKET_CLOSE_TIMEOUT"),
            rate_limit=conf.get("WEBSOCKET_RATE_LIMIT"),
            rate_burst=conf.get("WEBSOCKET_RATE_BURST"),
        )
        self.environ["wsgi.websocket"] = self.websocket
        self.environ["wsgi.websocket_version"] = SUPPORTED_VERSION
        if conf.get("WEBSOCKET_SEND_BUFFER"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, conf.get("WEBSOCKET_SEND_BUFFER"))
        registry.add(self.websocket)
        registry.handshakes += 1  # until the view accepts (the 101) or ends: see accept()
        self.handshaking = True
        try:
            self.result = self.application(self.environ, self.start_response)
            if self.websocket.accepted:
                self.websocket.finish()
            else:
                self.process_result()  # Django refused the upgrade: its response goes out as HTTP
        finally:
            self.handshake_done()
            registry.discard(self.websocket)
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
            self.result = None
            self.environ["wsgi.websocket"] = None

    def refusal(self):
        """(reason, message) when this worker must turn an upgrade away with 503, else None."""
        if registry.draining:  # SIGTERM: the clients it is closing must come back elsewhere
            return "shutting_down", "This worker is shutting down; reconnect (another worker will take you)."
        if len(registry) >= conf.get("WEBSOCKET_MAX_CONNECTIONS"):
            return "max_connections", "This worker is at its connection limit; try another or retry later."
        if registry.handshakes >= conf.get("WEBSOCKET_MAX_HANDSHAKES"):
            # A storm: queueing more joins would only make every one of them slower.
            return "busy", "This worker has too many connections opening at once; retry in a moment."
        return None

    handshaking = False

    def handshake_done(self):
        if self.handshaking:
            self.handshaking = False
            registry.handshakes -= 1

    def accept(self):
        self.handshake_done()
        self.send_switching_protocols()

    def send_worker_status(self, path):
        """/healthz (JSON; 503 when the broker is down) and /metrics (Prometheus text)."""
        if path == "/metrics":
            body = metrics.render()
            WSGIHandler.start_response(self, "200 OK", [
                ("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Content-Length", str(len(body)))])
            return self.write(body)
        broker = get_broker()
        health = {"status": "ok" if broker.connected else "degraded", "broker": broker.kind,
                  "broker_connected": broker.connected, "connections": len(registry)}
        body = json.dumps(health).encode()
        WSGIHandler.start_response(self, "200 OK" if broker.connected else "503 Service Unavailable", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        self.write(body)

    def is_upgrade_request(self):
        return (self.environ.get("REQUEST_METHOD") == "GET"
                and self.environ.get("HTTP_UPGRADE", "").lower() == "websocket")

    def send_plain_response(self, status, body, headers):
        body = body.encode()
        self.close_connection = True
        WSGIHandler.start_response(self, status, headers + [
            ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        self.write(body)

    def send_switching_protocols(self):
        key = self.environ["HTTP_SEC_WEBSOCKET_KEY"].strip()
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        WSGIHandler.start_response(self, "101 Switching Protocols", [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)])
        self._prepare_response()
        self.write(b"")  # flushes the headers; the socket now speaks WebSocket

    def start_response(self, status, headers, exc_info=None):
        if self.websocket is not None and self.websocket.accepted:
            # The view has ended an upgraded connection; its HttpResponse has nowhere to go.
            return lambda data: None
        return WSGIHandler.start_response(self, status, headers, exc_info)

    def log_request(self):
        PyWSGIHandler.log_request(self)
