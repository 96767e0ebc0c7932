"""Resume without loss: a chat client that reconnects with `since` gets exactly what it missed.

Two real workers share Redis and the test database; messages are posted concurrently through
both of them (and through this process, standing for the page server) while the client is away.
Message ids count 1, 2, 3, ... in each room, however the posts race.
"""

import signal
import socket
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from django.test import override_settings

from chat.models import Message, Room
from chat.services import post_message, publish_message
from realtime.testing import ChannelClient, LiveWebSocketTestCase, wait_until
from tests.history import RoomClientsMixin, create_rooms, store_history


def post_from_this_process(room, name, count):
    """`count` messages through post_message in this thread, as the page server would post them."""
    try:
        for i in range(count):
            post_message(room, f"{name} {i}", name, "#000000")
    finally:
        connection.close()  # this thread's own database connection


def post_without_publishing(room, text):
    """The next message of `room`, stored as post_message stores it, its publish not sent (yet)."""
    message = Message.objects.create(room=room, seq=room.last_seq + 1, name="ann", color="#000000", text=text)
    room.last_seq = message.seq
    room.save(update_fields=["last_seq"])
    return message


class ResumeTests(RoomClientsMixin, LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True

    def seen_one_message_then_gone(self, room, worker):
        """A user reads one message on `worker`; returns its id, the user's resume point."""
        ann = self.join(room, worker=worker, name="ann")
        ann.send_json("message", {"text": "before"})
        return ann, ann.receive_event("message")["id"]

    def post_concurrently(self, room, count, workers, also_from_this_process=0):
        """`count` messages sent at once, alternately through one client on each worker, and
        `also_from_this_process` more by each of two threads here meanwhile.

        Returns their ids in id order: the order every reader must see them in.
        """
        posters = [self.join(room, worker=worker, name=f"poster{i}") for i, worker in enumerate(workers)]
        already = Message.objects.filter(room__name=room).count()
        with ThreadPoolExecutor(2) as threads:
            posted_here = [threads.submit(post_from_this_process, room, f"thread{t}", also_from_this_process)
                           for t in range(2)]
            for i in range(count):
                posters[i % len(posters)].send_json("message", {"text": f"missed {i}"})
        for done in posted_here:
            done.result()  # raises what the thread raised
        total = count + 2 * also_from_this_process
        wait_until(lambda: Message.objects.filter(room__name=room).count() == already + total,
                   timeout=20, message=f"{total} messages stored")
        for poster in posters:
            poster.close()
        return list(Message.objects.filter(room__name=room).order_by("seq").values_list("seq", flat=True))[already:]

    def assert_resumes_with_exactly(self, room, since, missed, worker):
        """Reconnecting with `since`, the user sees the missed messages once, in order, then live ones."""
        ann = self.connect(f"/chat/{room}/", worker=worker, since=since)
        before_welcome, welcome = ann.receive_until("welcome", timeout=10)
        self.assertEqual({m["event"] for m in before_welcome}, {"message"})  # no resync, no error
        self.assertEqual([m["data"]["id"] for m in before_welcome], missed)
        self.assertEqual(welcome["last_id"], missed[-1])
        # Live messages follow through either worker, and none of the missed ones again (one whose
        # publish was still on its way when the history was read is not sent twice).
        for other in self.workers:
            bob = self.join(room, worker=other, name="bob")
            bob.send_json("message", {"text": f"live via {other.port}"})
            live = ann.receive_event("message")
            self.assertEqual((live["id"], live["text"]), (missed[-1] + 1, f"live via {other.port}"))
            missed.append(live["id"])
            bob.close()

    def test_reconnect_gets_the_100_messages_posted_through_two_workers_in_order_then_live_ones(self):
        ann, last_seen = self.seen_one_message_then_gone("away", self.workers[0])
        ann.close()
        missed = self.post_concurrently("away", 100, self.workers)
        self.assertEqual(missed, list(range(last_seen + 1, last_seen + 101)))
        self.assert_resumes_with_exactly("away", last_seen, missed, self.workers[0])

    def test_posts_racing_through_two_workers_and_the_page_server_are_numbered_1_to_n(self):
        """However posts race, a room's ids are 1..N without a hole or a repeat: a user who stayed
        got each of them live once, and one who left after any id k gets exactly k+1..N back."""
        stayed = self.join("race", name="stayed")
        with override_settings(REDIS_URL=self.redis.url):  # this process publishes, like the page server
            ids = self.post_concurrently("race", 60, self.workers, also_from_this_process=20)
        self.assertEqual(ids, list(range(1, 101)))
        self.assertEqual(Room.objects.get(name="race").last_seq, 100)
        live = [stayed.receive_event("message")["id"] for _ in ids]
        self.assertEqual(sorted(live), ids)  # live order may differ between processes; each came once
        for k in (0, 1, 37, 99, 100):
            with self.subTest(since=k):
                client = self.connect("/chat/race/", worker=self.workers[k % 2], since=k)
                before_welcome, welcome = client.receive_until("welcome")
                self.assertEqual([m["data"]["id"] for m in before_welcome], list(range(k + 1, 101)))
                self.assertEqual(welcome["last_id"], 100)

    def test_joining_while_others_post_gets_history_then_welcome_then_every_later_message(self):
        """A user who opens the room while messages pour in gets history up to welcome's last_id
        (no live message overtakes welcome), then live messages from the very next id on: nothing
        skipped, nothing twice."""
        create_rooms("busy")
        with override_settings(REDIS_URL=self.redis.url), ThreadPoolExecutor(1) as thread:
            posting = thread.submit(post_from_this_process, "busy", "poster", 150)
            users = []
            stored = Message.objects.filter(room__name="busy")
            while not posting.done() or not users:  # a user joins every 15 messages or so
                users.append(self.connect("/chat/busy/", worker=self.workers[len(users) % 2]))
                wait_until(lambda: posting.done() or stored.count() > 15 * len(users),
                           timeout=20, message="more messages posted")
            posting.result()
        for user in users:
            history, welcome = user.receive_until("welcome")
            self.assertEqual({m["event"] for m in history} - {"message"}, set())
            history_ids = [m["data"]["id"] for m in history]
            last_id = welcome["last_id"]
            self.assertEqual(history_ids, list(range(last_id - len(history_ids) + 1, last_id + 1)))
            live = []  # nothing when the history already ended at 150
            while max(live, default=last_id) < 150:
                live.append(user.receive_event("message")["id"])
            # One poster: published in id order. A message stored just before the history was read
            # may reach the worker through Redis only after it: the worker does not send it again.
            self.assertEqual(live, list(range(last_id + 1, 151)))

    def test_a_message_is_sent_once_however_late_or_often_its_publish_reaches_the_worker(self):
        """The two repeats a worker can see: a publish that arrives after the joiner's history already
        had the message (it was stored and read first), and the same publish twice (a retry after a
        failover, or a catch-up that read it while it was on its way). Nobody gets either twice."""
        room = store_history("late", 2)
        early = self.join("late", worker=self.workers[0], name="early")  # joined with history 1, 2
        stored_late = post_without_publishing(room, "stored, its publish late")  # id 3, not published yet
        joiner = self.connect("/chat/late/", worker=self.workers[0], since=2)
        before_welcome, welcome = joiner.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in before_welcome], ["stored, its publish late"])
        self.assertEqual(welcome["last_id"], 3)
        with override_settings(REDIS_URL=self.redis.url):
            for _ in range(2):  # late, and then once more
                publish_message(stored_late)
            post_message("late", "next", "server", "#000000")
        self.assertEqual(self.texts_until(early, "next"), ["stored, its publish late", "next"])
        self.assertEqual(self.texts_until(joiner, "next"), ["next"])
        early.send_json("ping", {"then": "nothing more"})  # everything sent before the pong is in
        self.assertEqual([m for m in early.receive_until("pong")[0] if m["event"] == "message"], [])

    def test_a_backlog_bigger_than_the_send_queue_reaches_every_resuming_client_in_pieces(self):
        """1,000 messages of 2,000 control characters (each escapes to 6 bytes in JSON: ~12 MB, three
        times the 4 MiB send queue), then 5 clients resume from before them with small receive buffers (as on
        a real network): each reaches its welcome (on /socket/: its join's reply) with every message,
        in order, instead of being closed as a slow consumer and retrying forever."""
        room = Room.objects.create(name="heavy")
        Message.objects.bulk_create(Message(room=room, seq=i + 1, name="guest", color="#000000", text="\x01" * 2000)
                                    for i in range(1000))
        room.last_seq = 1000
        room.save(update_fields=["last_seq"])
        small_buffer = {"sockopt": ((socket.SOL_SOCKET, socket.SO_RCVBUF, 16384),)}
        clients = [self.open_client(self.workers[i % 2].url("/chat/heavy/", since=0), **small_buffer) for i in range(4)]
        for client in clients:
            history, welcome = client.receive_until("welcome", timeout=60)
            self.assertEqual([m["data"]["id"] for m in history], list(range(1, 1001)))
            self.assertEqual(welcome["last_id"], 1000)
        channel = ChannelClient(self.workers[0].url("/socket/"), **small_buffer)
        self.addCleanup(channel.close)
        reply = channel.join("chat:heavy", since=0, timeout=60)
        self.assertEqual([push["offset"] for push in channel.before_reply if push["event"] == "message"],
                         list(range(1, 1001)))
        self.assertEqual((reply["status"], reply["offset"], reply["recovered"]), ("ok", 1000, True))
        for worker in self.workers:  # nobody was closed for it
            self.assertNotIn('reason="slow_consumer"', worker.http_get("/metrics")[2])

    def test_same_when_the_worker_it_was_on_was_killed_and_restarted_meanwhile(self):
        ann, last_seen = self.seen_one_message_then_gone("restart", self.workers[0])
        self.addCleanup(self.workers[0].start_if_stopped)
        self.workers[0].stop(signal.SIGKILL)  # no cleanup at all: the user's socket just dies
        missed = self.post_concurrently("restart", 50, self.workers[1:])
        self.workers[0].start()  # the same port: the client reconnects to the URL it knows
        missed += self.post_concurrently("restart", 50, self.workers)
        self.assert_resumes_with_exactly("restart", last_seen, missed, self.workers[0])

    def test_since_further_back_than_the_resume_limit_is_told_then_gets_recent_history(self):
        store_history("far", 1002)
        client = self.connect("/chat/far/", since=1)  # 1001 messages behind; the limit is 1000
        before_welcome, welcome = client.receive_until("welcome")
        self.assertEqual(before_welcome[0]["event"], "resync")
        self.assertEqual(before_welcome[0]["data"]["reason"], "too_far_behind")
        self.assertEqual([m["data"]["id"] for m in before_welcome[1:]], list(range(953, 1003)))
        self.assertEqual(welcome["last_id"], 1002)

    def test_since_the_server_no_longer_has_is_told_then_gets_recent_history(self):
        store_history("reset", 3)
        # An id from before a database reset (or a pruned message): resuming after it could skip messages.
        client = self.connect("/chat/reset/", since=1003)
        before_welcome, _ = client.receive_until("welcome")
        self.assertEqual(before_welcome[0]["data"]["reason"], "unknown_since")
        self.assertEqual([m["data"]["id"] for m in before_welcome[1:]], [1, 2, 3])

    def test_since_zero_is_everything_from_the_start(self):
        # A client that joined an empty room resumes from 0 (its welcome said last_id 0).
        empty = self.join("empty-at-first")
        empty.close()
        store_history("empty-at-first", 60)
        client = self.connect("/chat/empty-at-first/", since=0)
        before_welcome, _ = client.receive_until("welcome")
        self.assertEqual(len(before_welcome), 60)  # all of them, not just the last 50
