"""Resume without loss: a chat client that reconnects with `since` gets exactly what it missed.

Two real workers share Redis and the test database; messages are posted concurrently through
both of them while the client is away.
"""

import signal

from chat.models import Message, Room
from realtime.testing import LiveWebSocketTestCase, wait_until


class ResumeTests(LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True

    def join(self, room, worker=None, **query):
        client = self.connect(f"/chat/{room}/", worker=worker, **query)
        client.receive_event("welcome")
        return client

    def seen_one_message_then_gone(self, room, worker):
        """A user reads one message on `worker`; returns its id, the user's resume point."""
        ann = self.join(room, worker=worker, name="ann")
        ann.send_json("message", {"text": "before"})
        return ann, ann.receive_event("message")["id"]

    def post_concurrently(self, room, count, workers):
        """`count` messages sent at once, alternately through one client on each worker.

        Returns their ids in id order: the order every reader must see them in.
        """
        posters = [self.join(room, worker=worker, name=f"poster{i}") for i, worker in enumerate(workers)]
        already = Message.objects.filter(room__name=room).count()
        for i in range(count):
            posters[i % len(posters)].send_json("message", {"text": f"missed {i}"})
        wait_until(lambda: Message.objects.filter(room__name=room).count() == already + count,
                   timeout=20, message=f"{count} messages stored")
        for poster in posters:
            poster.close()
        return list(Message.objects.filter(room__name=room).order_by("id").values_list("id", flat=True))[already:]

    def assert_resumes_with_exactly(self, room, since, missed, worker):
        """Reconnecting with `since`, the user sees the missed messages once, in order, then live ones."""
        ann = self.connect(f"/chat/{room}/", worker=worker, since=since)
        before_welcome, welcome = ann.receive_until("welcome", timeout=10)
        self.assertEqual({m["event"] for m in before_welcome}, {"message"})  # no resync, no error
        self.assertEqual([m["data"]["id"] for m in before_welcome], missed)
        self.assertEqual(welcome["last_id"], missed[-1])
        # Live messages follow through either worker, and no missed one comes again.
        for other in self.workers:
            bob = self.join(room, worker=other, name="bob")
            bob.send_json("message", {"text": f"live via {other.port}"})
            self.assertEqual(ann.receive_event("message")["text"], f"live via {other.port}")
            bob.close()

    def test_reconnect_gets_the_100_messages_posted_through_two_workers_in_order_then_live_ones(self):
        ann, last_seen = self.seen_one_message_then_gone("away", self.workers[0])
        ann.close()
        missed = self.post_concurrently("away", 100, self.workers)
        self.assertEqual(len(missed), 100)
        self.assert_resumes_with_exactly("away", last_seen, missed, self.workers[0])

    def test_same_when_the_worker_it_was_on_was_killed_and_restarted_meanwhile(self):
        ann, last_seen = self.seen_one_message_then_gone("restart", self.workers[0])
        self.addCleanup(self.workers[0].start_if_stopped)
        self.workers[0].stop(signal.SIGKILL)  # no cleanup at all: the user's socket just dies
        missed = self.post_concurrently("restart", 50, self.workers[1:])
        self.workers[0].start()  # the same port: the client reconnects to the URL it knows
        missed += self.post_concurrently("restart", 50, self.workers)
        self.assert_resumes_with_exactly("restart", last_seen, missed, self.workers[0])

    def test_since_further_back_than_the_resume_limit_is_told_then_gets_recent_history(self):
        room = Room.objects.create(name="far")
        Message.objects.bulk_create(Message(room=room, name="old", color="#000000", text=f"m{i}") for i in range(1002))
        ids = list(room.messages.values_list("id", flat=True))
        client = self.connect("/chat/far/", since=ids[0])  # 1001 messages behind; the limit is 1000
        before_welcome, welcome = client.receive_until("welcome")
        self.assertEqual(before_welcome[0]["event"], "resync")
        self.assertEqual(before_welcome[0]["data"]["reason"], "too_far_behind")
        self.assertEqual([m["data"]["id"] for m in before_welcome[1:]], ids[-50:])
        self.assertEqual(welcome["last_id"], ids[-1])

    def test_since_the_server_no_longer_has_is_told_then_gets_recent_history(self):
        room = Room.objects.create(name="reset")
        Message.objects.bulk_create(Message(room=room, name="old", color="#000000", text=f"m{i}") for i in range(3))
        ids = list(room.messages.values_list("id", flat=True))
        # An id from before a database reset (or a pruned message): resuming after it could skip messages.
        client = self.connect("/chat/reset/", since=ids[-1] + 1000)
        before_welcome, _ = client.receive_until("welcome")
        self.assertEqual(before_welcome[0]["data"]["reason"], "unknown_since")
        self.assertEqual([m["data"]["id"] for m in before_welcome[1:]], ids)

    def test_since_zero_is_everything_from_the_start(self):
        # A client that joined an empty room resumes from 0 (its welcome said last_id 0).
        empty = self.join("empty-at-first")
        empty.close()
        room = Room.objects.get(name="empty-at-first")
        Message.objects.bulk_create(Message(room=room, name="x", color="#000000", text=f"m{i}") for i in range(60))
        client = self.connect("/chat/empty-at-first/", since=0)
        before_welcome, _ = client.receive_until("welcome")
        self.assertEqual(len(before_welcome), 60)  # all of them, not just the last 50
