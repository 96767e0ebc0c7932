"""Pure unit tests: no sockets, no servers."""

import io
from http.client import HTTPException
from unittest import mock

import gevent

from django.test import RequestFactory, SimpleTestCase, override_settings
from django.urls import Resolver404
from gevent.pywsgi import headers_factory
from hypothesis import given, settings as hypothesis_settings, strategies as st
from websockets.server import ServerProtocol

from chat.forms import MessageForm, NickForm
from project.test_runner import error_line
from realtime.fanout.brokers.in_process import InProcessBroker
from realtime.server.application import WebSocketApplication
from realtime.envelope import ClientError, envelope, parse_envelope
from realtime.server.handler import handshake_request, plainly_valid
from realtime.server.http_headers import read_headers
from realtime.fanout import hub as hub_module
from realtime.fanout.hub import REPEAT, ChannelWatcher, Hub, text_frame
from realtime.fanout.offsets import DeliveredOffsets
from realtime.testing import InProcessWebSocket
from realtime.transport import Limits
from realtime.server.origin import origin_allowed


class EnvelopeTests(SimpleTestCase):
    def test_round_trip(self):
        self.assertEqual(parse_envelope(envelope("message", {"text": "é"})), ("message", {"text": "é"}))
        self.assertEqual(parse_envelope('{"event": "nick"}'), ("nick", {}))

    def test_errors_name_what_is_wrong(self):
        for message, code in ((b"\x00", "binary_not_supported"), ("{", "invalid_json"), ("[]", "invalid_envelope"),
                              ('{"event": 1}', "invalid_envelope"), ('{"event": "x", "data": []}', "invalid_envelope")):
            with self.subTest(message=message), self.assertRaises(ClientError) as error:
                parse_envelope(message)
            self.assertEqual(error.exception.code, code)


    def test_nesting_deeper_than_python_recurses_is_invalid_json(self):
        with self.assertRaises(ClientError) as error:
            parse_envelope("[" * 100_000)
        self.assertEqual(error.exception.code, "invalid_json")


class FormTests(SimpleTestCase):
    def test_message_text_is_stripped_and_1_to_2000_characters(self):
        form = MessageForm({"text": "  hi  "})
        self.assertTrue(form.is_valid())
        self.assertEqual(form.cleaned_data["text"], "hi")
        for text in ("", "   ", "x" * 2001):
            self.assertFalse(MessageForm({"text": text}).is_valid())

    def test_nick_name_printable_1_to_32_and_colour_rrggbb(self):
        form = NickForm({"name": " Ann ", "color": "#ABCDEF"})
        self.assertTrue(form.is_valid())
        self.assertEqual(form.cleaned_data, {"name": "Ann", "color": "#abcdef"})
        for data in ({"name": "x" * 33, "color": "#000000"}, {"name": "a\nb", "color": "#000000"},
                     {"name": "ok", "color": "#12345"}, {"name": "ok", "color": "red"}):
            self.assertFalse(NickForm(data).is_valid(), data)


class OriginTests(SimpleTestCase):
    """Which page may open a socket: Django's CSRF origin rule, on the upgrade request."""

    def allowed(self, origin, host="example.com", secure=False, **meta):
        request = RequestFactory().get("/chat/", HTTP_HOST=host, secure=secure, **meta)
        return origin_allowed(request, origin)

    @override_settings(DEBUG=False, ALLOWED_HOSTS=["*"], CSRF_TRUSTED_ORIGINS=[])
    def test_only_the_request_own_origin_even_when_every_host_is_allowed(self):
        self.assertTrue(self.allowed("http://example.com"))
        self.assertTrue(self.allowed("https://example.com", secure=True))
        self.assertTrue(self.allowed("http://example.com:8080", host="example.com:8080"))
        for origin in ("https://example.com", "http://example.com:8080", "http://www.example.com",
                       "https://evil.example", "http://example.com.evil.example", "null", ""):
            self.assertFalse(self.allowed(origin), origin)
        self.assertFalse(self.allowed("http://example.com", secure=True), "an http page opening a wss:// socket")

    @override_settings(DEBUG=False, ALLOWED_HOSTS=["example.com"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
    def test_behind_a_tls_proxy_the_scheme_comes_from_the_proxy_header(self):
        self.assertTrue(self.allowed("https://example.com", HTTP_X_FORWARDED_PROTO="https"))
        self.assertFalse(self.allowed("http://example.com", HTTP_X_FORWARDED_PROTO="https"))
        self.assertTrue(self.allowed("http://example.com", HTTP_X_FORWARDED_PROTO="http"))

    @override_settings(DEBUG=False, ALLOWED_HOSTS=["example.com"],
                       CSRF_TRUSTED_ORIGINS=["https://app.example.net", "https://*.partner.net"])
    def test_trusted_origins_match_whole_origins_and_subdomain_patterns(self):
        for origin in ("https://app.example.net", "https://partner.net", "https://chat.partner.net"):
            self.assertTrue(self.allowed(origin), origin)
        for origin in ("http://app.example.net", "https://app.example.net:8443", "http://chat.partner.net",
                       "https://partner.net.evil", "https://evilpartner.net"):
            self.assertFalse(self.allowed(origin), origin)

    @override_settings(DEBUG=False, ALLOWED_HOSTS=["example.com"])
    def test_a_host_outside_allowed_hosts_has_no_own_origin(self):
        self.assertFalse(self.allowed("http://evil.example", host="evil.example"))

    @override_settings(DEBUG=True, ALLOWED_HOSTS=["localhost", "127.0.0.1", "[::1]"])
    def test_in_development_a_page_on_another_port_of_the_same_host_may_connect(self):
        # make run: the page on :8000, the socket on :8001.
        self.assertTrue(self.allowed("http://127.0.0.1:8000", host="127.0.0.1:8001"))
        self.assertTrue(self.allowed("http://[::1]:8000", host="[::1]:8001"))
        for origin in ("http://localhost:8000", "https://127.0.0.1:8000", "http://evil.example:8000"):
            self.assertFalse(self.allowed(origin, host="127.0.0.1:8001"), origin)

    @override_settings(DEBUG=False, ALLOWED_HOSTS=["localhost", "127.0.0.1"])
    def test_in_production_another_port_is_another_origin(self):
        self.assertFalse(self.allowed("http://127.0.0.1:8000", host="127.0.0.1:8001"))


def member(**limits):
    """A hub member: the socket interface in this process, with the transport's own core."""
    return InProcessWebSocket({"PATH_INFO": "/test/"}, accept=lambda: None, limits=Limits(**limits), close_timeout=1)


def received(ws):
    """All the bytes the member's client got so far."""
    chunks = []
    while (data := ws.peer_receive(timeout=0)) is not None:
        chunks.append(data)
    return b"".join(chunks)


class NumberedMessages(ChannelWatcher):
    """A channel whose messages are their own offsets ("1", "2", ...), delivered once each."""

    def __init__(self):
        self.delivered = DeliveredOffsets()

    def saw(self, payload):
        offset = int(payload)
        return offset if self.delivered.first(offset) else REPEAT


def started_hub(broker):
    """A hub fed by `broker`, started as the worker starts it."""
    hub = Hub(broker)
    broker.start(hub.dispatch, hub.resync_all)
    return hub


class HubTests(SimpleTestCase):
    def test_subscribes_once_per_channel_and_frames_once_for_all(self):
        broker = InProcessBroker()
        hub = started_hub(broker)
        ann, bob, eve = member(), member(), member()
        subscriptions = [hub.subscribe("room", ann), hub.subscribe("room", bob), hub.subscribe("other", eve)]
        broker.publish("room", "hello")
        self.assertEqual(received(ann), text_frame(b"hello"))
        self.assertEqual(received(bob), text_frame(b"hello"))
        self.assertEqual(received(eve), b"")
        for subscription in subscriptions:
            subscription.close()
        self.assertEqual(hub.groups, {})  # the last one out unsubscribes the channel

    def test_paused_subscription_holds_live_messages_and_skips_what_the_backlog_had(self):
        broker = InProcessBroker()
        hub = started_hub(broker)
        hub.watcher("room", NumberedMessages)  # each message's text is its offset
        ann = member()
        subscription = hub.subscribe("room", ann, paused=True)
        broker.publish("room", "1")
        broker.publish("room", "2")
        self.assertEqual(received(ann), b"")
        self.assertEqual(ann.core.held, 2)  # counted against its send queue meanwhile
        subscription.resume(floor=1)  # the backlog ended at 1
        broker.publish("room", "3")
        # 1 published again (its first publish was late): the backlog had it, and it never comes.
        broker.publish("room", "1")
        self.assertEqual(received(ann), text_frame(b"2") + text_frame(b"3"))
        self.assertEqual((ann.core.held, ann.core.pending_bytes), (0, 0))

    def test_a_repeat_the_watcher_recognises_goes_to_no_member(self):
        broker = InProcessBroker()
        hub = started_hub(broker)
        hub.watcher("room", NumberedMessages)
        ann = member()
        hub.subscribe("room", ann)
        for text in ("1", "2", "2", "4", "3", "4", "1"):
            broker.publish("room", text)
        self.assertEqual(received(ann), b"".join(text_frame(text.encode()) for text in ("1", "2", "4", "3")))

    def test_a_subscription_that_leaves_paused_gives_back_what_it_held(self):
        broker = InProcessBroker()
        hub = started_hub(broker)
        ann = member()
        with hub.subscribe("room", ann, paused=True):
            broker.publish("room", "1")
        self.assertEqual((ann.core.held, ann.core.pending_bytes), (0, 0))

    def test_a_full_hold_closes_its_member_once_with_1013_however_much_more_comes(self):
        for limits, text in (({"max_queue_messages": 10}, "x"), ({"max_queue_bytes": 1000}, "x" * 400)):
            broker = InProcessBroker()
            hub = started_hub(broker)
            ann = member(**limits)
            hub.subscribe("room", ann, paused=True)
            with self.assertLogs("realtime.connection", "WARNING") as logs:
                for _ in range(100):
                    broker.publish("room", text)
            self.assertEqual(logs.output, ["WARNING:realtime.connection:closing /test/ with 1013: slow_consumer"])
            # Its client sees the close frame (held messages were never sent), then the end.
            self.assertEqual(received(ann), b"\x88\x20\x03\xf5slow consumer: send queue full")


    def test_a_paced_delivery_lets_members_drain_after_each_piece_and_waits_for_stuck_ones_only_so_long(self):
        """A catch-up of 250 messages goes out in pieces of PACED_PIECE_MESSAGES; after each piece the
        members get PACED_DRAIN_WAIT s in all (not each) to write it out. Two members that never drain
        hold it up by that much a piece between them, and everyone gets every message, in order."""
        class NeverDrains(InProcessWebSocket):
            def wait_drained(self, timeout):
                self.waits.append(timeout)
                gevent.sleep(timeout)
                return False

        hub = started_hub(InProcessBroker())
        ann = member()
        stuck = [NeverDrains({"PATH_INFO": "/test/"}, accept=lambda: None, limits=Limits(), close_timeout=1)
                 for _ in range(2)]
        for ws in [ann, *stuck]:
            ws.waits = []
            hub.subscribe("room", ws)
        messages = [(offset, str(offset).encode()) for offset in range(1, 251)]
        with mock.patch.object(hub_module, "PACED_DRAIN_WAIT", 0.05):
            hub.deliver_paced("room", messages)
        in_order = b"".join(text_frame(payload) for _, payload in messages)
        for ws in [ann, *stuck]:
            self.assertEqual(received(ws), in_order)
        # After the pieces 1-100 and 101-200 (not after the last): one stuck member waited out the
        # whole bound, and the other was not waited for.
        waits = [timeout for ws in stuck for timeout in ws.waits]
        self.assertEqual(len(waits), 2, waits)
        self.assertTrue(all(0 < timeout <= 0.05 for timeout in waits), waits)


class DeliveredOffsetsTests(SimpleTestCase):
    def test_each_offset_counts_once_in_any_order_and_the_watermark_follows_the_filled_holes(self):
        offsets = DeliveredOffsets(watermark=3)
        self.assertEqual([offsets.first(o) for o in (2, 5, 4, 5, 6, 4, 8)], [False, True, True, False, True, False, True])
        self.assertEqual((offsets.watermark, offsets.ahead), (6, {8}))

    def test_a_hole_that_never_fills_keeps_a_bounded_number_above_it(self):
        offsets = DeliveredOffsets()
        for offset in range(2, 2 + 10 * DeliveredOffsets.AHEAD_LIMIT):
            self.assertTrue(offsets.first(offset))
        self.assertEqual((offsets.watermark, len(offsets.ahead)), (0, DeliveredOffsets.AHEAD_LIMIT))
        self.assertTrue(offsets.first(1))  # the late one still goes out: nothing is lost for a bound
        self.assertFalse(offsets.first(2 + 10 * DeliveredOffsets.AHEAD_LIMIT - 1))


class FailureLineTests(SimpleTestCase):
    """The runner's closing line per failed test: what CI shows when it keeps only the tail."""

    def test_the_last_exception_line_is_kept_and_a_driver_stacktrace_dropped(self):
        traceback_text = (
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in test\n    wait()\n"
            "KeyError: 'inner'\n\nThe above exception was the direct cause of the following exception:\n\n"
            "selenium.common.exceptions.TimeoutException: Message: status 'live'\nStacktrace:\n"
            "#0 0x55 <unknown>\n#1 0x56 <unknown>\n")
        self.assertEqual(error_line(traceback_text),
                         "selenium.common.exceptions.TimeoutException: Message: status 'live'")
        self.assertEqual(error_line("AssertionError: Lists differ: [1, 1] != [1, 2]\n\nFirst differing element 1:\n"),
                         "AssertionError: Lists differ: [1, 1] != [1, 2]")


class HandshakeCheckTests(SimpleTestCase):
    """The quick check of an upgrade request never lets through one websockets' checks refuse."""

    @hypothesis_settings(max_examples=400, deadline=None, database=None)
    @given(connection=st.sampled_from(["Upgrade", "upgrade", "keep-alive, Upgrade", "Upgrade, keep-alive", "close", "",
                                       "Upgrade,Upgrade", "Up grade"]),
           upgrade=st.sampled_from(["websocket", "WebSocket", "websocket, websocket", "h2c", "", "websocket/13"]),
           version=st.sampled_from(["13", "8", "13, 13", "", " 13"]),
           key=st.one_of(st.sampled_from(["dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", "not base64!",
                                          "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==,dGhlIHNhbXBsZSBub25jZQ=="]),
                         st.text(alphabet="ABCabc012+/=", min_size=20, max_size=28)),
           protocol=st.sampled_from([None, "chat", "bad protocol@@", "realtime.v1", "realtime.v1, realtime.bearer.eyJ1Ijo",
                                     "realtime.v1,realtime.bearer.a_b-c", "realtime.v1,", ",realtime.v1", "a,,b",
                                     "realtime.v1 , x", "realtime.v1\t,x", "realtime/v1", "x=y", ""]),
           http=st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    def test_quick_check_passes_only_what_websockets_checks_pass(self, connection, upgrade, version, key, protocol, http):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/echo/", "HTTP_CONNECTION": connection, "HTTP_UPGRADE": upgrade,
                   "HTTP_SEC_WEBSOCKET_VERSION": version, "HTTP_SEC_WEBSOCKET_KEY": key}
        if protocol is not None:
            environ["HTTP_SEC_WEBSOCKET_PROTOCOL"] = protocol
        if plainly_valid(environ, http):
            ServerProtocol().process_request(handshake_request(environ, http))  # raises if it should not pass

    def test_the_requests_clients_send_take_the_quick_check(self):
        for connection in ("Upgrade", "keep-alive, Upgrade"):
            environ = {"HTTP_CONNECTION": connection, "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_VERSION": "13",
                       "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ=="}
            self.assertTrue(plainly_valid(environ, "HTTP/1.1"))
        self.assertFalse(plainly_valid({**environ, "HTTP_SEC_WEBSOCKET_KEY": "not base64!"}, "HTTP/1.1"))
        for offer in ("realtime.v1", "realtime.v1, realtime.bearer.ZXlKMSI6", "chat,superchat"):  # /socket/'s too
            self.assertTrue(plainly_valid({**environ, "HTTP_SEC_WEBSOCKET_PROTOCOL": offer}, "HTTP/1.1"), offer)


class HeaderParsingTests(SimpleTestCase):
    """realtime.server.http_headers reads every header block as gevent's email-based reader does."""

    @staticmethod
    def both(block):
        results = []
        for read in (read_headers, headers_factory):
            fp = io.BytesIO(block)
            try:
                message = read(fp, 0)
                results.append((message._headers, message.status, fp.tell()))
            except HTTPException as error:
                results.append((type(error), str(error)))
        return results

    @hypothesis_settings(max_examples=500, deadline=None, database=None)
    @given(lines=st.lists(st.one_of(
        st.sampled_from([b"Host: 127.0.0.1:8001\r\n", b"Upgrade: websocket\r\n", b"X-Empty:\r\n", b"X-Tab:\tv \r\n",
                         b"Cookie: a=b; c=d\n", b" folded continuation\r\n", b"\tfolded\r\n", b"no colon\r\n",
                         b"From me@example.com\r\n", b"Bad Name: v\r\n", b"Stray: a\rb\r\n", b"Latin: caf\xe9\r\n",
                         b"N\xe9me: v\r\n", b":empty name\r\n", b"A:b: c\r\n", b"Host: no newline"]),
        st.binary(max_size=30).map(lambda raw: raw.replace(b"\n", b"") + b"\r\n")), max_size=12),
        end=st.sampled_from([b"\r\n", b"\n", b""]), body=st.sampled_from([b"", b"body"]))
    def test_any_header_block_reads_the_same(self, lines, end, body):
        fast, email_based = self.both(b"".join(lines) + end + body)
        self.assertEqual(fast, email_based)

    def test_limits_are_http_client_s(self):
        for count in (99, 100, 101):
            fast, email_based = self.both(b"".join(b"H%d: v\r\n" % i for i in range(count)) + b"\r\n")
            self.assertEqual(fast, email_based)
        fast, email_based = self.both(b"Long: " + b"x" * 70000 + b"\r\n\r\n")
        self.assertEqual((fast[1], email_based[1]), ("Line too long", "Line too long"))


class RouteMemoryTests(SimpleTestCase):
    """The worker resolves a path once; unknown paths and paths past the bound are not remembered."""

    def request(self, path):
        request = RequestFactory().get(path)
        request.urlconf = "websocket_urls"
        return request

    def test_a_path_is_resolved_once_and_what_is_remembered_is_bounded(self):
        app = WebSocketApplication()
        app.ROUTES_REMEMBERED = 2
        first, again = (app.resolve_request(self.request("/chat/lobby/")) for _ in range(2))
        self.assertIs(again, first)
        self.assertEqual((again.url_name, again.kwargs), ("chat_room", {"room": "lobby"}))
        with self.assertRaises(Resolver404):
            app.resolve_request(self.request("/nowhere/"))
        for room in ("a", "b", "c"):
            self.assertEqual(app.resolve_request(self.request(f"/chat/{room}/")).kwargs, {"room": room})
        self.assertEqual(list(app._routes), ["/chat/lobby/", "/chat/a/"])
