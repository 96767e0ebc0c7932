"""A blocking WebSocket test client (websocket-client) where every receive has a timeout."""

import websocket as websocket_client

from ..transport.codes import NORMAL
from .envelopes import EnvelopeCalls
from .waits import DEFAULT_TIMEOUT


class WebSocketClient(EnvelopeCalls):
    """A blocking test client (websocket-client) where every receive has a timeout."""

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, **options):
        self.ws = websocket_client.create_connection(url, timeout=timeout, **options)

    def send(self, message):
        if isinstance(message, str):
            self.ws.send(message)
        else:
            self.ws.send_binary(bytes(message))

    def receive(self, timeout=DEFAULT_TIMEOUT):
        """The next message (str or bytes); AssertionError if none comes in time."""
        self.ws.settimeout(timeout)
        try:
            opcode, data = self.ws.recv_data()
        except websocket_client.WebSocketTimeoutException:
            raise AssertionError(f"no message within {timeout} s") from None
        if opcode == websocket_client.ABNF.OPCODE_TEXT:
            return data.decode()
        if opcode == websocket_client.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"connection closed by the server: {self.close_code(data)}")
        return data

    def receive_close(self, timeout=DEFAULT_TIMEOUT):
        """Read until the server's close frame; return its code (None if the TCP connection just ended).

        Pings are answered meanwhile and the close is echoed, as a live client would.
        """
        self.ws.settimeout(timeout)
        try:
            while True:
                frame = self.ws.recv_frame()
                if frame.opcode == websocket_client.ABNF.OPCODE_PING:
                    self.ws.pong(frame.data)
                elif frame.opcode == websocket_client.ABNF.OPCODE_CLOSE:
                    self.close_reason = frame.data[2:].decode(errors="replace")
                    try:
                        self.ws.send_close(self.close_code(frame.data) or NORMAL)
                    except (OSError, websocket_client.WebSocketException):
                        pass
                    return self.close_code(frame.data)
        except (websocket_client.WebSocketConnectionClosedException, ConnectionError):
            return None

    @staticmethod
    def close_code(data):
        return int.from_bytes(data[:2], "big") if len(data) >= 2 else None

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


class ClientsMixin:
    """Test cases that open WebSocketClients: each one is closed after the test."""

    def setUp(self):
        super().setUp()
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        super().tearDown()

    def open_client(self, url, **options):
        client = WebSocketClient(url, **options)
        self.clients.append(client)
        return client
