"""Echo and ping views: on a real gunicorn websocket worker with two Python clients (websocket-client,
websockets), and in this process where no worker is needed."""

import asyncio

import websockets

from django.test import SimpleTestCase

from realtime.testing import LiveWebSocketTestCase, WebsocketCommunicator, wait_until

SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024]


def payload(size):
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class EchoTests(LiveWebSocketTestCase):
    def test_text_and_binary_come_back_exactly_with_websocket_client(self):
        client = self.connect("/echo/")
        for size in SIZES:
            with self.subTest(size=size):
                text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte UTF-8, `size` bytes
                client.send(text)
                self.assertEqual(client.receive(), text)
                client.send(payload(size))
                self.assertEqual(client.receive(), payload(size))

    def test_text_and_binary_come_back_exactly_with_asyncio_websockets(self):
        async def round_trips():
            async with websockets.connect(self.worker.url("/echo/"), max_size=None) as ws:
                for size in SIZES:
                    text = "x" * size
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), text)
                    await ws.send(payload(size))
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), payload(size))

        asyncio.run(round_trips())

    def test_normal_open_and_close_logs_no_server_error(self):
        client = self.connect("/echo/", probe="clean-close")
        client.send("bye")
        self.assertEqual(client.receive(), "bye")
        client.close()
        wait_until(lambda: "probe=clean-close HTTP/1.1\" 101" in self.worker.log(), message="the access log line")
        log = self.worker.log()
        self.assertNotIn("ERROR", log)
        self.assertNotIn("didn't return an HttpResponse", log)
        self.assertNotIn("Internal Server Error", log)


class InProcessEchoTests(SimpleTestCase):
    def test_the_client_close_code_is_echoed(self):
        with WebsocketCommunicator("/echo/") as ws:
            ws.send("bye")
            self.assertEqual(ws.receive(), "bye")
            self.assertEqual(ws.close(1001, "leaving"), 1001)

    def test_an_unknown_path_is_refused_with_404_before_any_upgrade(self):
        ws = WebsocketCommunicator("/no-such-socket/")
        self.addCleanup(ws.disconnect)
        self.assertFalse(ws.connect())
        self.assertEqual(ws.status, 404)


class PingTests(SimpleTestCase):
    def test_ping_gets_pong_pong_gets_ping_anything_else_nothing(self):
        with WebsocketCommunicator("/ping/") as ws:
            ws.send("ping")
            self.assertEqual(ws.receive(), "pong")
            ws.send("pong")
            self.assertEqual(ws.receive(), "ping")
            ws.send("hello")
            self.assertTrue(ws.receive_nothing(), "'hello' got an answer")
            ws.send("ping")
            self.assertEqual(ws.receive(), "pong")


class HttpOnWebSocketPortTests(LiveWebSocketTestCase):
    def test_plain_get_to_websocket_url_is_426_with_readable_body(self):
        status, headers, body = self.worker.http_get("/echo/")
        self.assertEqual(status, 426)
        self.assertIn("this URL speaks WebSocket", body)
        self.assertEqual(headers.get("Upgrade"), "websocket")

    def test_unknown_path_is_404_without_upgrade(self):
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        self.assertEqual(self.worker.http_get("/no-such-socket/")[0], 404)
        status, headers, _ = self.worker.http_get("/no-such-socket/", headers=upgrade)
        self.assertEqual(status, 404)
        self.assertNotIn("Sec-WebSocket-Accept", headers)

    def test_bad_handshakes_get_a_clear_4xx(self):
        base = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        status, headers, body = self.worker.http_get("/echo/", {**base, "Sec-WebSocket-Version": "8"})
        self.assertEqual((status, headers.get("Sec-WebSocket-Version")), (426, "13"))
        self.assertIn("Unsupported Sec-WebSocket-Version", body)
        status, _, body = self.worker.http_get("/echo/", {**base, "Sec-WebSocket-Key": "not base64!"})
        self.assertEqual(status, 400)
        self.assertIn("Sec-WebSocket-Key", body)
        without_connection = {name: value for name, value in base.items() if name != "Connection"}
        status, _, body = self.worker.http_get("/echo/", without_connection)
        self.assertEqual(status, 400)
        self.assertIn("Connection", body)
