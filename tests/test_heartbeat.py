"""The application-level heartbeat the browser client relies on: every envelope route answers `ping`."""

from django.contrib.auth.models import User
from django.test import Client

from realtime.testing import LiveWebSocketTestCase


class HeartbeatTests(LiveWebSocketTestCase):
    def test_every_envelope_route_answers_ping_with_pong_and_the_same_data(self):
        browser = Client()  # the jobs feed is for logged-in users
        browser.force_login(User.objects.create_user("ann", password="a long enough password"))
        for path in ("/chat/", "/time/", "/jobs/"):
            with self.subTest(path=path):
                client = self.open_client(self.worker.url(path), cookie=f"sessionid={browser.cookies['sessionid'].value}")
                client.send_json("ping", {"sent": 1234})
                self.assertEqual(client.receive_event("pong"), {"sent": 1234})
