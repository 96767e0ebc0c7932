"""The application-level heartbeat the browser client relies on: every envelope route answers `ping`."""

from realtime.testing import LiveWebSocketTestCase


class HeartbeatTests(LiveWebSocketTestCase):
    def test_every_envelope_route_answers_ping_with_pong_and_the_same_data(self):
        for path in ("/chat/", "/time/", "/jobs/"):
            with self.subTest(path=path):
                client = self.connect(path)
                client.send_json("ping", {"sent": 1234})
                self.assertEqual(client.receive_event("pong"), {"sent": 1234})
