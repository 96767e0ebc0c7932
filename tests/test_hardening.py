"""The transport against bad, slow, flooding and vanishing clients, on a real worker (in this process,
through WebsocketCommunicator, what needs no worker: route decorators, limits and origins).

Each test says what the client sees: a close code from RFC 6455, an `error` event, or an HTTP status.
"""

import re
import socket
import struct
import time

import websocket as websocket_client
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from django.test import SimpleTestCase, override_settings

from realtime.testing import LiveWebSocketTestCase, WebsocketCommunicator, wait_until
from tests.history import create_rooms
from tests.raw import RawClient, RawClientNoWait, frame

TEXT, BINARY, CLOSE, PING, CONT = 0x1, 0x2, 0x8, 0x9, 0x0


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class TransportTests(LiveWebSocketTestCase):
    worker_env = {"WEBSOCKET_URLCONF": "tests.websocket_urls"}

    def test_two_greenlets_sending_at_once_never_interleave_frames(self):
        client = self.connect("/test/two-senders/")
        seen = {"a": 0, "b": 0}
        for _ in range(400):
            message = client.receive(timeout=10)
            sender, seq, rest = message.split(b":", 2)
            sender = sender.decode()
            self.assertEqual(len(message), 65536)
            self.assertEqual(rest, sender.encode() * len(rest), "a frame mixes the two senders' bytes")
            self.assertEqual(int(seq), seen[sender], "a sender's messages arrive in order")
            seen[sender] += 1
        self.assertEqual(seen, {"a": 200, "b": 200})

    def test_a_view_does_not_hold_its_database_connection_while_it_waits(self):
        client = self.connect("/test/db-then-wait/")
        client.send("go")
        self.assertEqual(client.receive(), "before wait: held; while waiting: released")


@override_settings(WEBSOCKET_URLCONF="tests.websocket_urls")
class RouteTests(SimpleTestCase):
    def test_a_decorator_over_a_websocket_view_still_runs(self):
        # The worker calls @websocket views directly (one frame less per idle connection), but
        # never past another decorator on top: here it refuses at the handshake, as it says.
        refused = WebsocketCommunicator("/test/guarded-echo/")
        self.addCleanup(refused.disconnect)
        self.assertFalse(refused.connect())
        self.assertEqual((refused.status, refused.content), (403, b"No pass.\n"))
        with WebsocketCommunicator("/test/guarded-echo/", {"pass": "1"}) as ws:
            ws.send("sixteen bytes ok")
            self.assertEqual(ws.receive(), "sixteen bytes ok")
            ws.send("seventeen bytes !")  # over the view's own limit, which still applies
            self.assertEqual(ws.receive_close(), 1009)

    def test_bytes_sent_as_text_arrive_as_that_text(self):
        with WebsocketCommunicator("/test/bytes-as-text/") as ws:
            self.assertEqual(ws.receive(), "café")

    @override_settings(WEBSOCKET_RATE_LIMIT=10, WEBSOCKET_RATE_BURST=20)
    def test_a_burst_within_the_rate_limit_is_fine(self):
        with WebsocketCommunicator("/echo/") as ws:
            for i in range(20):
                ws.send(f"m{i}")
            self.assertEqual([ws.receive() for _ in range(20)], [f"m{i}" for i in range(20)])


class ProtocolViolationTests(LiveWebSocketTestCase):
    """Each violation gets the close code RFC 6455 requires; the worker and other clients carry on."""

    def raw(self):
        client = RawClient(self.worker.port)
        self.addCleanup(client.close)
        return client

    def assert_closed_with(self, data, code):
        client = self.raw()
        client.send(data)
        self.assertEqual(client.close_code(), code)

    def test_violations(self):
        cases = {
            "unmasked client frame": (frame(TEXT, b"hi", mask=False), 1002),
            "reserved bits set": (frame(TEXT, b"hi", rsv=0b100), 1002),
            "reserved data opcode": (frame(0x3, b"hi"), 1002),
            "reserved control opcode": (frame(0xB, b""), 1002),
            "control frame over 125 bytes": (frame(PING, b"x" * 126), 1002),
            "fragmented control frame": (frame(PING, b"x", fin=False), 1002),
            "continuation without a start": (frame(CONT, b"x"), 1002),
            "invalid UTF-8 text": (frame(TEXT, b"\xff\xfe"), 1007),
            "close code 999": (frame(CLOSE, close_payload(999)), 1002),
            "close code 1005 (reserved)": (frame(CLOSE, close_payload(1005)), 1002),
            "close frame of one byte": (frame(CLOSE, b"\x03"), 1002),
            "close reason not UTF-8": (frame(CLOSE, close_payload(1000, b"\xff")), 1007),
        }
        for name, (data, code) in cases.items():
            with self.subTest(name):
                self.assert_closed_with(data, code)
        self.assert_worker_healthy()

    def test_valid_close_codes_and_reasons_are_echoed(self):
        for code in (1000, 1001, 3000, 4999):
            with self.subTest(code=code):
                client = self.raw()
                client.send(frame(CLOSE, close_payload(code, "au revoir é".encode())))
                self.assertEqual(client.read_frame(), (CLOSE, close_payload(code, "au revoir é".encode())))

    def test_frame_header_declaring_4_gib_is_refused_at_once_with_1009(self):
        # Only the header is sent: the worker must answer without waiting for (or reserving) 4 GiB.
        self.assert_closed_with(frame(BINARY, declared_length=4 * 1024**3)[:14], 1009)

    def test_message_over_the_size_limit_is_closed_with_1009(self):
        client = self.connect("/echo/")
        client.send(b"x" * (1024 * 1024 + 1))
        self.assertEqual(client.receive_close(), 1009)

    def test_fragmented_message_over_the_limit_is_closed_with_1009(self):
        client = self.raw()
        client.send(frame(BINARY, b"x" * 600_000, fin=False) + frame(CONT, b"x" * 600_000))
        self.assertEqual(client.close_code(), 1009)

    def test_fragmented_message_within_the_limit_is_reassembled(self):
        client = self.raw()
        client.send(frame(TEXT, "héllo ".encode()[:2], fin=False) + frame(PING, b"p")
                    + frame(CONT, "héllo ".encode()[2:], fin=False) + frame(CONT, b"world"))
        self.assertEqual(client.read_frame(), (0xA, b"p"))  # the ping is answered in between
        self.assertEqual(client.read_frame(), (TEXT, "héllo world".encode()))

    def test_a_close_between_fragments_completes_the_closing_handshake_normally(self):
        """RFC 6455 5.4: control frames may come between fragments; a close there is a close."""
        client = self.raw()
        client.send(frame(TEXT, b"hel", fin=False) + frame(CLOSE, close_payload(1000)))
        self.assertEqual(client.read_frame(), (CLOSE, close_payload(1000)))
        self.assertIsNone(client.read_frame())  # then the server closes the TCP connection

    def test_peer_vanishing_mid_frame_is_a_clean_end(self):
        for _ in range(5):
            client = self.raw()
            client.send(frame(BINARY, b"x" * 1000)[:300])
            client.close()
        self.assert_worker_healthy()

    def test_http_1_0_upgrade_gets_400_with_a_body(self):
        with socket.create_connection(("127.0.0.1", self.worker.port), timeout=5) as sock:
            sock.sendall(b"GET /echo/ HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            response = b""
            while chunk := sock.recv(4096):
                response += chunk
        head, _, body = response.partition(b"\r\n\r\n")
        self.assertIn(b" 400 ", head.split(b"\r\n")[0])
        self.assertIn(b"HTTP/1.1", body)

    def test_random_and_mutated_frames_never_hurt_the_worker(self):
        frames = st.builds(lambda op, payload, fin, rsv, mask, cut: frame(op, payload, fin, rsv, mask)[:cut],
                           st.integers(0, 15), st.binary(max_size=200), st.booleans(), st.integers(0, 7),
                           st.booleans(), st.integers(0, 400))

        @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(data=st.one_of(st.binary(max_size=300), frames, st.lists(frames, max_size=4).map(b"".join)))
        def each_connection_ends_cleanly(data):
            client = RawClient(self.worker.port, timeout=3)
            try:
                client.send(data)
                client.sock.shutdown(socket.SHUT_WR)
                code = client.close_code()
                # A close code RFC 6455 allows on the wire, or a dropped connection.
                self.assertTrue(code is None or code == "no code" or 1000 <= code <= 4999, code)
            finally:
                client.close()
            self.assertEqual(self.echo("still fine"), "still fine")

        each_connection_ends_cleanly()
        self.assert_worker_healthy()

    def echo(self, text):
        if not hasattr(self, "_bystander"):
            self._bystander = self.connect("/echo/")
        self._bystander.send(text)
        return self._bystander.receive()

    def assert_worker_healthy(self):
        self.assertEqual(self.echo("alive"), "alive")
        log = self.worker.log()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("Internal Server Error", log)


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


class HandshakeLimitTests(LiveWebSocketTestCase):
    worker_env = {"WEBSOCKET_MAX_HANDSHAKES": "2", "WEBSOCKET_URLCONF": "tests.websocket_urls",
                  "CLIENT_RECONNECT_WINDOW": "4"}

    def test_upgrades_over_the_handshakes_in_flight_get_503_and_a_retry_after_within_the_window(self):
        slow = [RawClientNoWait(self.worker.port, "/test/slow-accept/") for _ in range(2)]
        self.addCleanup(lambda: [client.close() for client in slow])
        # Two joins are in flight: a third upgrade is turned away at once, not queued behind them.
        status, headers, body = wait_until(lambda: self.refused(), timeout=1.4, message="a 503 while two are in flight")
        self.assertIn("too many connections opening at once", body)
        self.assertIn(int(headers["Retry-After"]), range(1, 5))  # within CLIENT_RECONNECT_WINDOW
        # Once they are accepted, the worker takes new clients again.
        for client in slow:
            self.assertIn(b" 101 ", client.status_line())
        self.assertIn(b" 101 ", RawClient(self.worker.port, "/echo/").status_line)

    def test_upgrades_the_view_refuses_end_their_handshake_too(self):
        for _ in range(3):  # more than WEBSOCKET_MAX_HANDSHAKES, one after another
            self.assertEqual(self.worker.http_get("/test/guarded-echo/", headers=UPGRADE)[0], 403)
        self.assertIn(b" 101 ", RawClient(self.worker.port, "/echo/").status_line)

    def refused(self):
        response = self.worker.http_get("/echo/", headers=UPGRADE)
        if response and response[0] == 503:
            return response
        return None


class LimitTests(LiveWebSocketTestCase):
    worker_env = {"WEBSOCKET_RATE_LIMIT": "10", "WEBSOCKET_RATE_BURST": "20", "WEBSOCKET_MAX_CONNECTIONS": "5",
                  "WEBSOCKET_HANDSHAKE_TIMEOUT": "0.5"}

    def test_flood_gets_an_error_event_then_close_1008(self):
        create_rooms("flood")
        client = self.connect("/chat/flood/")
        client.receive_event("welcome")
        for i in range(60):
            client.send_json("message", {"text": f"flood {i}"})
        error = client.receive_event("error")
        self.assertEqual(error["code"], "rate_limited")
        self.assertIn("at most 10 per second", error["detail"])
        self.assertEqual(client.receive_close(), 1008)

    def test_connections_over_the_worker_limit_get_503_at_the_handshake(self):
        open_ones = [self.connect("/echo/") for _ in range(5)]
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.connect("/echo/")
        self.assertEqual(refused.exception.status_code, 503)
        # Told when to come back: whole seconds within CLIENT_RECONNECT_WINDOW (the default here, 5 s).
        self.assertIn(int(refused.exception.resp_headers["retry-after"]), range(1, 6))
        open_ones[0].close()
        wait_until(lambda: self.can_connect(), message="a free slot after one client left")

    def can_connect(self):
        try:
            self.connect("/echo/")
            return True
        except websocket_client.WebSocketBadStatusException:
            return False

    def test_slow_handshake_gets_408_and_silent_client_is_dropped(self):
        for sent, expected in ((b"GET /echo/ HTTP/1.1\r\n", b"HTTP/1.1 408 "), (b"", b"")):
            with self.subTest(sent=sent), socket.create_connection(("127.0.0.1", self.worker.port), timeout=5) as sock:
                sock.sendall(sent)  # ...and never finishes the request
                started = time.monotonic()
                self.assertTrue(sock.recv(100).startswith(expected))
                self.assertEqual(sock.recv(100), b"")  # then the worker hangs up
                self.assertLess(time.monotonic() - started, 4)


class LivenessTests(LiveWebSocketTestCase):
    worker_env = {"WEBSOCKET_PING_INTERVAL": "0.5", "WEBSOCKET_PING_TIMEOUT": "0.5", "WEBSOCKET_IDLE_TIMEOUT": "3",
                  "WEBSOCKET_URLCONF": "tests.websocket_urls"}

    def test_client_that_answers_pings_stays_connected(self):
        client = self.connect("/echo/")  # websocket-client answers pings while it reads
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            client.send("tick")
            self.assertEqual(client.receive(), "tick")
            time.sleep(0.2)

    def test_a_client_whose_answers_wait_unread_is_not_taken_for_dead(self):
        """The view reads nothing for 2 s (four ping timeouts): the client's pongs sit in the
        worker's socket buffer. They prove it alive, so it gets "done" instead of a 1011 close."""
        client = self.connect("/test/busy-then-reply/")
        self.assertEqual(client.receive(), "busy")
        self.assertEqual(client.receive(), "done")  # websocket-client answers pings while it waits

    def test_client_that_stops_answering_pings_is_dropped(self):
        client = RawClient(self.worker.port)
        self.addCleanup(client.close)
        started = time.monotonic()
        # The raw client reads but never answers: it sees pings, then a 1011 close or the end.
        opcodes = []
        while (received := client.read_frame()) is not None:
            opcodes.append(received[0])
            if received[0] == CLOSE:
                self.assertEqual(struct.unpack("!H", received[1][:2])[0], 1011)
        self.assertIn(PING, opcodes)
        self.assertLess(time.monotonic() - started, 4)  # interval + timeout + a sweep, with margin

    def test_idle_connection_is_closed_with_1001(self):
        client = self.connect("/echo/")
        self.assertEqual(client.receive_close(timeout=8), 1001)


class SlowConsumerTests(LiveWebSocketTestCase):
    use_redis = True
    worker_env = {"WEBSOCKET_MAX_QUEUE_MESSAGES": "200", "WEBSOCKET_MAX_QUEUE_BYTES": "65536",
                  "WEBSOCKET_SEND_BUFFER": "16384"}

    def test_a_client_that_never_reads_is_closed_and_the_others_keep_receiving(self):
        create_rooms("busy")
        slow = websocket_client.create_connection(self.worker.url("/chat/busy/"), timeout=5,
                                                  sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        self.addCleanup(slow.close)
        others = [self.connect("/chat/busy/") for _ in range(100)]
        for client in others:
            client.receive_event("welcome")
        rss_before = self.worker.rss()
        text = "x" * 300
        for round_ in range(8):
            for i, client in enumerate(others):
                client.send_json("message", {"text": f"{round_}:{i}:{text}"})
            expected = {f"{round_}:{i}" for i in range(100)}
            for client in others:  # everyone keeps receiving every message
                got = {client.receive_event("message")["text"].rsplit(":", 1)[0] for _ in range(100)}
                self.assertEqual(got, expected)
        metrics = self.worker.http_get("/metrics")[2]
        self.assertRegex(metrics, r'realtime_closes_total\{pid="\d+",reason="slow_consumer"\} 1\.0')
        self.assertRegex(metrics, r'realtime_connections\{pid="\d+"\} 100\.0')  # the slow one is gone
        self.assertLess(self.worker.rss() - rss_before, 50 * 1024 * 1024)


class PartlyWrittenFrameTests(LiveWebSocketTestCase):
    worker_env = {"WEBSOCKET_URLCONF": "tests.websocket_urls", "WEBSOCKET_MAX_QUEUE_MESSAGES": "8",
                  "WEBSOCKET_SEND_BUFFER": "16384"}

    def slow_consumer_closes(self):
        metrics = self.worker.http_get("/metrics")[2]
        found = re.search(r'realtime_closes_total\{pid="\d+",reason="slow_consumer"\} (\d+)', metrics)
        return int(found[1]) if found else 0

    def test_a_client_closed_in_the_middle_of_a_frame_gets_the_whole_frame_then_1013(self):
        """The worker sends 64 KiB frames without waiting to a client with a tiny receive buffer
        that does not read: the socket takes part of the first frame, the rest of it and the
        frames after it queue, and the queue overflows. The client, reading again, must find the
        whole frame, then the close frame with 1013: a close frame written into the middle of the
        frame would be garbage to it, and it would see 1006."""
        client = RawClient(self.worker.port, path="/test/frames-without-waiting/", receive_buffer=4096)
        self.addCleanup(client.close)
        wait_until(lambda: self.slow_consumer_closes() == 1, message="the worker to give up on the client")
        frames = []
        while (received := client.read_frame()) is not None:
            frames.append(received)
            if received[0] == CLOSE:
                break
        self.assertEqual([opcode for opcode, _ in frames][-1:], [CLOSE], "no close frame: the stream was garbled")
        self.assertEqual(frames[-1][1], close_payload(1013, b"slow consumer: send queue full"))
        self.assertGreaterEqual(len(frames), 2)  # the frame begun before the close, at least
        self.assertEqual(frames[:-1], [(TEXT, b"x" * 65536)] * (len(frames) - 1))


class OriginChecks:
    """Open /echo/ as a page of `origin` would (Host: `host`); the 403 says who may not."""

    host = "127.0.0.1:8001"

    def connect_with_origin(self, origin, host=None, **headers):
        with WebsocketCommunicator("/echo/", headers={"Origin": origin, "Host": host or self.host, **headers}) as ws:
            ws.send("hi")
            self.assertEqual(ws.receive(), "hi")

    def assert_refused(self, origin, **headers):
        ws = WebsocketCommunicator("/echo/", headers={"Origin": origin, "Host": self.host, **headers})
        self.addCleanup(ws.disconnect)
        self.assertFalse(ws.connect(), f"{origin} was let in")
        self.assertEqual(ws.status, 403)
        self.assertIn(f"Origin {origin} is not allowed".encode(), ws.content)

    def test_no_origin_is_a_non_browser_client_and_connects(self):
        with WebsocketCommunicator("/echo/", headers={"Host": self.host}) as ws:
            ws.send("no origin")
            self.assertEqual(ws.receive(), "no origin")


@override_settings(DEBUG=False, ALLOWED_HOSTS=["*"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
                   CSRF_TRUSTED_ORIGINS=["https://app.example.net", "https://*.partner.net"])
class OriginTests(OriginChecks, SimpleTestCase):
    """Production: ALLOWED_HOSTS = * behind a TLS proxy, one trusted origin of another site."""

    def test_the_own_origin_connects_with_the_scheme_the_proxy_reports(self):
        own = self.host
        self.connect_with_origin(f"http://{own}")
        self.connect_with_origin(f"https://{own}", X_Forwarded_Proto="https")
        self.assert_refused(f"http://{own}", X_Forwarded_Proto="https")  # an http page, a wss socket
        self.assert_refused(f"https://{own}")

    def test_trusted_origins_connect(self):
        for origin in ("https://app.example.net", "https://chat.partner.net"):
            with self.subTest(origin=origin):
                self.connect_with_origin(origin)

    def test_any_other_origin_gets_403_though_every_host_is_allowed(self):
        for origin in ("https://evil.example", "null", "http://localhost:8001", "http://127.0.0.1:8002",
                       "http://app.example.net", "https://app.example.net:8443", "https://evilpartner.net"):
            with self.subTest(origin=origin):
                self.assert_refused(origin)


@override_settings(DEBUG=True, ALLOWED_HOSTS=["localhost", "127.0.0.1"])
class DevelopmentOriginTests(OriginChecks, SimpleTestCase):
    """DEBUG (make run): pages on :8000, sockets on another port of the same host."""

    def test_a_page_on_another_port_of_the_same_host_connects(self):
        for origin in ("http://127.0.0.1:8000", f"http://{self.host}"):
            with self.subTest(origin=origin):
                self.connect_with_origin(origin)
        self.connect_with_origin("http://localhost:8000", host="localhost:8001")

    def test_another_host_or_scheme_gets_403(self):
        for origin in ("https://evil.example", "http://localhost:8000", "https://127.0.0.1:8000", "null"):
            with self.subTest(origin=origin):
                self.assert_refused(origin)
