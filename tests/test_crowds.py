"""Crowds: a room across two workers survives a worker's restart and a Redis restart.

Crowds of 2,000 are the aim. This 2-CPU machine runs the test clients, both workers and Redis
at once, so the tests use the smallest crowd that still shows the properties: CROWD members, 150
per worker, enough that a presence notice per member (the old n² of `join` events: 45,000 here)
or a reconnect without jitter would show as a timeout, while the whole class runs in well under
a minute. Crowds of thousands are measured by the benchmark (`bench/`, scenario crowd-*).
"""

import signal
import time

from django.test import override_settings

from chat.services import post_message
from realtime.fanout.brokers import BrokerUnavailable
from realtime.testing import LiveWebSocketTestCase
from tests.crowd import Crowd
from tests.history import create_rooms

CROWD = 300
ENV = {"PRESENCE_TTL": "3", "PRESENCE_REFRESH": "0.5", "PRESENCE_DIFF_WINDOW": "0.2",
       "CLIENT_RECONNECT_WINDOW": "1", "WS_GRACEFUL_TIMEOUT": "5"}


class CrowdTests(LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True
    worker_env = ENV

    def fill(self, room):
        create_rooms(room)
        crowd = Crowd()
        self.addCleanup(crowd.close)
        started = time.monotonic()
        for i in range(CROWD):
            crowd.join(f"m{i:03}", self.workers[i % 2].url(f"/chat/{room}/"))
        crowd.pump_until(lambda: all(m.list.count == CROWD for m in crowd.members), 30,
                         f"every member to count {CROWD}")
        print(f"\n[measured] {CROWD} members joined one room over 2 workers and all counted {CROWD} "
              f"after {time.monotonic() - started:.1f} s")
        return crowd

    def everyone_gets(self, crowd, room, text, timeout=20):
        with override_settings(REDIS_URL=self.redis.url):  # published like the page server would
            post_message(room, text, "server", "#555555")
        crowd.pump_until(lambda: all(text in m.texts for m in crowd.members), timeout,
                         f"every member to get {text!r}")

    def test_a_worker_restarted_under_a_room_its_members_come_back_to_the_other_and_all_is_right(self):
        crowd = self.fill("restart")
        self.everyone_gets(crowd, "restart", "before")
        crowd.reconnect_to = self.workers[0].url("/chat/restart/")
        leaving = [m for m in crowd.members if m.connects == 1 and int(m.name[1:]) % 2 == 1]
        self.addCleanup(self.workers[1].start_if_stopped)
        started = time.monotonic()
        self.workers[1].process.send_signal(signal.SIGTERM)
        # Its members are closed 1001, come back to the other worker spread over the window, and
        # catch up; every member then counts CROWD again (the leavers left, the returners joined).
        crowd.pump_until(lambda: all(m.connects == 2 and m.welcomed for m in leaving)
                         and all(m.list.count == CROWD for m in crowd.members), 30,
                         f"the {len(leaving)} members of the stopped worker back, and every count {CROWD}")
        print(f"[measured] {len(leaving)} members were back on the other worker and every count right "
              f"{time.monotonic() - started:.1f} s after SIGTERM")
        self.everyone_gets(crowd, "restart", "after")
        codes = {code for m in crowd.members for code in m.close_codes}
        self.assertEqual(codes, {1001})  # none closed 1011 (not answered) or 1013 (too slow)
        self.assertEqual(crowd.resyncs, [])

    def test_redis_restarted_under_a_room_nobody_reconnects_and_nobody_misses_a_message(self):
        crowd = self.fill("blip")
        self.everyone_gets(crowd, "blip", "before")
        self.redis.stop()
        time.sleep(0.5)
        with override_settings(REDIS_URL=self.redis.url), self.assertRaises(BrokerUnavailable):
            post_message("blip", "during", "server", "#555555")  # stored, but Redis is down
        self.redis.start()
        # Every member gets the message of the outage on its open socket, and live ones after it.
        crowd.pump_until(lambda: all("during" in m.texts for m in crowd.members), 30,
                         "every member to be caught up with 'during'")
        self.everyone_gets(crowd, "blip", "after")
        self.assertEqual([m.name for m in crowd.members if m.connects != 1 or m.close_codes], [])
        self.assertEqual(crowd.resyncs, [])
        self.assertTrue(all(m.texts == ["before", "during", "after"] for m in crowd.members))
