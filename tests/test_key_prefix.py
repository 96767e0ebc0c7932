"""Two deployments (REALTIME_KEY_PREFIX "blue:" and "green:") on one redis-server: same room name,
and neither hears the other's messages or sees the other's members."""

import json

import redis

from realtime.testing import LiveWebSocketTestCase
from tests.history import create_rooms


class TwoSitesOnOneRedisTests(LiveWebSocketTestCase):
    use_redis = True
    worker_count = 2  # the first of site blue, the second of site green

    @classmethod
    def start_worker(cls, **env):
        return super().start_worker(REALTIME_KEY_PREFIX=("blue:", "green:")[len(cls.workers)], **env)

    def join(self, worker, name):
        client = self.connect("/chat/shared/", worker=worker, name=name)
        client.receive_event("welcome")
        return client, client.receive_event("presence")

    def test_same_room_on_two_sites_no_message_or_member_crosses(self):
        blue, green = self.workers
        create_rooms("shared")
        ann, ann_presence = self.join(blue, "blue-ann")
        bob, bob_presence = self.join(green, "green-bob")
        # Each site's member list holds its own member only.
        self.assertEqual([m["name"] for m in ann_presence["members"]], ["blue-ann"])
        self.assertEqual((bob_presence["count"], [m["name"] for m in bob_presence["members"]]), (1, ["green-bob"]))
        cara, _ = self.join(blue, "blue-cara")

        ann.send_json("message", {"text": "blue one"})
        self.assertEqual(cara.receive_event("message")["text"], "blue one")  # her own site hears it
        bob.send_json("message", {"text": "green one"})
        # What bob gets up to his own message: had blue's message or cara's join crossed, it would
        # be here (blue's message was delivered before green's was sent).
        before, own = bob.receive_until("message")
        self.assertEqual(own["text"], "green one")
        self.assertNotIn("blue-", json.dumps(before))
        ann.send_json("message", {"text": "blue two"})
        before, own = cara.receive_until("message")
        self.assertEqual(own["text"], "blue two")  # not green's
        self.assertNotIn("green-", json.dumps(before))

        # In Redis: every channel and key is one site's, by its prefix.
        client = redis.Redis.from_url(self.redis.url)
        keys = [key.decode() for key in client.keys("*")]
        channels = [channel.decode() for channel in client.pubsub_channels()]
        self.assertTrue(keys and channels)
        for name in keys + channels:
            self.assertRegex(name, r"^(blue|green):", f"{name} carries no site prefix")
        self.assertIn("blue:chat:shared", channels)
        self.assertIn("green:chat:shared", channels)
        self.assertIn("green:presence:chat:shared", keys)
