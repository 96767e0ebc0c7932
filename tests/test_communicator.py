"""WebsocketCommunicator (realtime.testing): a `@websocket` view driven in this process, no server.

What a view does is tested with it across the suite (test_echo, test_hardening); here, what the
communicator itself promises, as docs/testing.md shows it.
"""

from django.contrib.auth.models import User
from django.test import SimpleTestCase, TestCase, override_settings

from realtime.testing import WebsocketCommunicator


class CommunicatorTests(SimpleTestCase):
    def test_a_refused_upgrade_gives_django_s_status_and_body(self):
        ws = WebsocketCommunicator("/no-such-socket/")
        self.addCleanup(ws.disconnect)
        self.assertFalse(ws.connect())
        self.assertEqual(ws.status, 404)
        self.assertIn(b"Not Found", ws.content)

    def test_a_refused_upgrade_in_a_with_block_says_why(self):
        with self.assertRaisesMessage(AssertionError, "/no-such-socket/: upgrade refused with 404"):
            with WebsocketCommunicator("/no-such-socket/"):
                pass

    @override_settings(WEBSOCKET_MAX_MESSAGE_SIZE=16)
    def test_settings_apply_per_communicator(self):
        with WebsocketCommunicator("/echo/", headers={"Origin": "http://testserver"}) as ws:
            ws.send("x" * 16)
            self.assertEqual(ws.receive(), "x" * 16)
            ws.send("x" * 17)
            self.assertEqual(ws.receive_close(), 1009)

    @override_settings(WEBSOCKET_RATE_LIMIT=0.001, WEBSOCKET_RATE_BURST=5)  # 5 messages, then none for 1000 s
    def test_the_view_s_socket_keeps_the_worker_s_rules(self):
        """In process, the view's `ws` is the worker's own core behind in-memory pipes: its limits and
        close codes are the worker's, not a copy. A flood gets the rate notice, then 1008."""
        with WebsocketCommunicator("/echo/") as ws:
            for i in range(6):
                ws.send_json("n", {"i": i})
            echoed, notice = ws.receive_until("error")
            self.assertEqual([message["data"]["i"] for message in echoed], list(range(5)))  # the 6th dropped
            self.assertEqual(notice["code"], "rate_limited")
            for i in range(5):  # more than a burst dropped in a row
                ws.send_json("n", {"i": i})
            self.assertEqual(ws.receive_close(), 1008)

    @override_settings(WEBSOCKET_URLCONF="tests.websocket_urls")
    def test_a_view_that_fails_after_accepting_closes_with_1011(self):
        with self.assertLogs("realtime", "ERROR") as logs, WebsocketCommunicator("/test/fail-after-hello/") as ws:
            self.assertEqual(ws.receive(), "hello")
            self.assertEqual(ws.receive_close(), 1011)
            self.assertEqual(ws.close_reason, "internal error")
        self.assertIn("RuntimeError: test hook: a view that fails", "\n".join(logs.output))

    def test_a_receive_that_gets_nothing_says_so_in_time(self):
        with WebsocketCommunicator("/ping/") as ws:
            ws.send("hello")
            with self.assertRaisesMessage(AssertionError, "no message within 0.2 s"):
                ws.receive(timeout=0.2)


class LoggedInCommunicatorTests(TestCase):
    def test_user_connects_logged_in_as_that_user(self):
        ann = User.objects.create_user("ann")
        # Only a logged-in user may open a room that does not exist yet.
        anonymous = WebsocketCommunicator("/chat/new-room/")
        self.addCleanup(anonymous.disconnect)
        self.assertFalse(anonymous.connect())
        self.assertEqual(anonymous.status, 404)
        with WebsocketCommunicator("/chat/new-room/", user=ann) as ws:
            welcome = ws.receive_event("welcome")
        self.assertEqual(welcome["name"], "ann")
