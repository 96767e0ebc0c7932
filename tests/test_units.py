"""Pure unit tests: no sockets, no servers."""

from django.test import SimpleTestCase, override_settings

from chat.forms import MessageForm, NickForm
from project.test_runner import error_line
from realtime.broker import LocalBroker
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
    @override_settings(ALLOWED_HOSTS=["example.com", ".example.org"], CSRF_TRUSTED_ORIGINS=["https://*.partner.net"])
    def test_allowed_hosts_and_trusted_origins(self):
        for origin in ("https://example.com", "http://example.com:8000", "https://www.example.org",
                       "https://app.partner.net"):
            self.assertTrue(origin_allowed(origin), origin)
        for origin in ("https://evil.com", "https://example.com.evil.com", "null", "", "http://partner.net.evil"):
            self.assertFalse(origin_allowed(origin), origin)


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


class HubTests(SimpleTestCase):
    def test_subscribes_once_per_channel_and_frames_once_for_all(self):
        broker = LocalBroker()
        hub = Hub(broker)
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
        hub = Hub(broker)
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
        hub = Hub(broker)
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
