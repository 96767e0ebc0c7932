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

from geventwebsocket.handler import WebSocketHandler as GeventWebSocketHandler
from gevent.pywsgi import WSGIHandler
from gunicorn.workers.ggevent import PyWSGIHandler

from . import conf
from .connection import Connection

SUPPORTED_VERSION = "13"  # RFC 6455; the drafts gevent-websocket also takes (7, 8) are not served


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


class WebSocketHandler(GeventWebSocketHandler, PyWSGIHandler):
    """gevent-websocket's handler with a deferred, validated handshake and our Connection."""

    websocket = None

    def run_application(self):
        if not self.is_upgrade_request():
            # Plain HTTP: Django answers (426 on a WebSocket route, 404 elsewhere).
            self.close_connection = True
            return WSGIHandler.run_application(self)
        error = handshake_error(self.environ, self.request_version)
        if error:
            return self.send_plain_response(*error)
        self.websocket = Connection(
            self.socket, self.rfile, self.environ, accept=self.send_switching_protocols,
            max_message_size=conf.get("WEBSOCKET_MAX_MESSAGE_SIZE"),
            max_queue_bytes=conf.get("WEBSOCKET_MAX_QUEUE_BYTES"),
            max_queue_messages=conf.get("WEBSOCKET_MAX_QUEUE_MESSAGES"),
            close_timeout=conf.get("WEBSOCKET_CLOSE_TIMEOUT"),
        )
        self.environ["wsgi.websocket"] = self.websocket
        self.environ["wsgi.websocket_version"] = SUPPORTED_VERSION
        self.close_connection = True
        try:
            self.result = self.application(self.environ, self.start_response)
            if self.websocket.accepted:
                self.websocket.finish()
            else:
                self.process_result()  # Django refused the upgrade: its response goes out as HTTP
        finally:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
            self.result = None
            self.environ["wsgi.websocket"] = None

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
