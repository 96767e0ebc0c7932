"""Test your WebSocket views: in this process, or against a real worker.

In this process, with no server (fast; the view, routing and middleware are the worker's own)::

    from realtime.testing import WebsocketCommunicator

    class EchoTests(TestCase):
        def test_echo(self):
            with WebsocketCommunicator("/echo/") as ws:
                ws.send("hi")
                self.assertEqual(ws.receive(), "hi")

Against a real gunicorn websocket worker (and Redis), when what you test crosses processes::

    from realtime.testing import LiveWebSocketTestCase

    class EchoTests(LiveWebSocketTestCase):
        def test_echo(self):
            client = self.connect("/echo/")
            client.send("hi")
            self.assertEqual(client.receive(), "hi")

Servers start once per test class on free loopback ports and stop afterwards. A system
binary that is missing skips the class locally, with the reason, and fails it in CI (CI=true).
docs/testing.md has the whole story.
"""

from .channels import ChannelClient, ChannelCommunicator, ErrorReply, bearer_offer
from .client import ClientsMixin, WebSocketClient
from .communicator import WebsocketCommunicator
from .in_process import InProcessWebSocket
from .live import GunicornServer, LiveWebSocketTestCase, WorkerProcess, database_url
from .processes import RedisServer, ServerProcess, free_port, require_binary
from .waits import DEFAULT_TIMEOUT, wait_until

__all__ = ["ChannelClient", "ChannelCommunicator", "ClientsMixin", "DEFAULT_TIMEOUT", "ErrorReply", "GunicornServer",
           "InProcessWebSocket", "LiveWebSocketTestCase", "RedisServer", "ServerProcess", "WebSocketClient",
           "WebsocketCommunicator", "WorkerProcess", "bearer_offer", "database_url", "free_port", "require_binary",
           "wait_until"]
