"""Pure unit tests: no sockets, no servers."""

from django.test import RequestFactory, SimpleTestCase, override_settings

from chat.forms import MessageForm, NickForm
from project.test_runner import error_line
from realtime.brokers.local import LocalBroker
from realtime.envelope import ClientError, envelope, parse_envelope
from realtime.hub import Hub, text_frame
from realtime.origin import origin_allowed


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


class RecordingConnection:
    max_queue_messages = 10

    def __init__(self):
        self.frames, self.aborts, self.closed = [], [], False

    def accept(self):
        pass

    def send_frame(self, frame):
        self.frames.append(frame)

    def abort(self, code, reason, cause):
        self.aborts.append(code)
        self.closed = True


def started_hub(broker):
    """A hub fed by `broker`, started as the worker starts it."""
    hub = Hub(broker)
    broker.start(hub.dispatch, hub.resync_all)
    return hub


class HubTests(SimpleTestCase):
    def test_subscribes_once_per_channel_and_frames_once_for_all(self):
        broker = LocalBroker()
        hub = started_hub(broker)
        ann, bob, eve = RecordingConnection(), RecordingConnection(), RecordingConnection()
        subscriptions = [hub.subscribe("room", ann), hub.subscribe("room", bob), hub.subscribe("other", eve)]
        broker.publish("room", "hello")
        self.assertEqual(ann.frames, [text_frame(b"hello")])
        self.assertEqual(bob.frames, ann.frames)
        self.assertEqual(eve.frames, [])
        for subscription in subscriptions:
            subscription.close()
        self.assertEqual(hub.groups, {})  # the last one out unsubscribes the channel

    def test_paused_subscription_holds_live_messages_and_skips_what_the_backlog_had(self):
        broker = LocalBroker()
        hub = started_hub(broker)
        ann = RecordingConnection()
        subscription = hub.subscribe("room", ann, paused=True)
        broker.publish("room", "1")
        broker.publish("room", "2")
        self.assertEqual(ann.frames, [])
        subscription.resume(skip=lambda payload: payload == b"1")
        broker.publish("room", "3")
        self.assertEqual(ann.frames, [text_frame(b"2"), text_frame(b"3")])


    def test_a_full_hold_closes_its_member_once_however_much_more_comes(self):
        broker = LocalBroker()
        hub = started_hub(broker)
        ann = RecordingConnection()
        hub.subscribe("room", ann, paused=True)
        for i in range(100):
            broker.publish("room", str(i))
        self.assertEqual(ann.aborts, [1013])
        self.assertEqual(ann.frames, [])


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
