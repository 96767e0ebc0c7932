"""Sending without loss: a message with a nonce is acknowledged with its id and stored once, however
often it is resent, through whichever worker; a refused one is answered with its nonce."""

from datetime import timedelta

from django.test import TestCase, override_settings

from chat.models import Message, Room
from chat.nonces import PRUNE_BATCH, PRUNE_EVERY
from chat.services import post_message
from realtime.testing import LiveWebSocketTestCase
from tests.history import RoomClientsMixin, create_rooms
from tests.test_chat import chat_say


class AcknowledgementTests(RoomClientsMixin, LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True

    def acks_and_messages(self, client, ack_count, message_count):
        """The client's next `ack_count` acks and `message_count` messages, each kind in the order it came."""
        acks, messages = [], []
        while len(acks) < ack_count or len(messages) < message_count:
            event = client.receive_json()
            {"ack": acks, "message": messages}.get(event["event"], []).append(event["data"])
        return acks, messages

    def stored(self, room):
        return list(Message.objects.filter(room__name=room).order_by("seq").values_list("seq", "text", "nonce"))

    def test_the_same_nonce_sent_twice_is_stored_once_and_both_sends_get_the_same_ack(self):
        ann = self.join("twice", name="ann", client="tab-1")
        for _ in range(2):  # the second: a resend, as after a connection that seemed dead
            ann.send_json("message", {"text": "only once", "nonce": "n-1"})
        ann.send_json("message", {"text": "marker", "nonce": "n-2"})
        # Acks come on the socket, live copies through Redis: in either order.
        acks, live = self.acks_and_messages(ann, 3, 2)
        self.assertEqual(acks, [{"nonce": "n-1", "id": 1}, {"nonce": "n-1", "id": 1}, {"nonce": "n-2", "id": 2}])
        # The room got it once, and its copy never names the nonce: that is the sender's alone (anyone who
        # saw it could send another message under it and make pages drop the original in its favour).
        self.assertEqual([(m["id"], m["text"], m.get("nonce")) for m in live], [(1, "only once", None), (2, "marker", None)])
        self.assertEqual(self.stored("twice"), [(1, "only once", "n-1"), (2, "marker", "n-2")])

    def test_a_resend_through_another_worker_after_a_reconnect_is_stored_once_with_the_same_ack(self):
        first = self.join("across", worker=self.workers[0], name="ann", client="tab-1")
        listener = self.join("across", worker=self.workers[1], name="bob")
        first.send_json("message", {"text": "typed once", "nonce": "n-1"})
        acked = first.receive_event("ack")
        first.close()  # the ack never made it to the page, say: it resends from its new connection
        again = self.join("across", worker=self.workers[1], name="ann", client="tab-1")
        again.send_json("message", {"text": "typed once", "nonce": "n-1"})
        self.assertEqual(again.receive_event("ack"), acked)
        # Another client that happens to pick the same nonce is another sender: its message is stored.
        other = self.join("across", worker=self.workers[0], name="cat", client="tab-2")
        other.send_json("message", {"text": "mine", "nonce": "n-1"})
        self.assertEqual(other.receive_event("ack"), {"nonce": "n-1", "id": 2})
        self.assertEqual([listener.receive_event("message")["text"] for _ in range(2)], ["typed once", "mine"])
        self.assertEqual(self.stored("across"), [(1, "typed once", "n-1"), (2, "mine", "n-1")])

    def test_a_client_back_gets_the_acks_of_its_own_messages_in_the_backlog_first_and_nobody_else_does(self):
        """The backlog's copies carry no nonce: a page that lost its acks with its connection learns
        from these which of its pending messages the backlog holds (and does not show them twice)."""
        ann = self.join("own", name="ann", client="tab-1")
        ann.send_json("message", {"text": "mine", "nonce": "n-1"})
        self.assertEqual(ann.receive_event("ack"), {"nonce": "n-1", "id": 1})
        ann.close()
        for client, acks in (("tab-1", [{"nonce": "n-1", "id": 1}]), ("tab-2", [])):
            with self.subTest(client=client):
                back = self.connect("/chat/own/", client=client, since=0)
                before_welcome, _ = back.receive_until("welcome")
                self.assertEqual([m["data"] for m in before_welcome if m["event"] == "ack"], acks)
                self.assertEqual([m["event"] for m in before_welcome], ["ack"] * len(acks) + ["message"])
                self.assertNotIn("nonce", before_welcome[-1]["data"])

    def test_a_refused_message_gets_an_error_with_its_nonce_and_nothing_is_stored(self):
        ann = self.join("refused", name="ann", client="tab-1")
        ann.send_json("message", {"text": "x" * 2001, "nonce": "too-long"})
        error = ann.receive_event("error")
        self.assertEqual((error["code"], error["nonce"]), ("invalid_message", "too-long"))
        self.assertIn("at most 2000 characters", error["detail"])  # what the user is shown
        ann.send_json("message", {"text": "fine", "nonce": "ok"})
        self.assertEqual(ann.receive_event("ack"), {"nonce": "ok", "id": 1})
        self.assertEqual(self.stored("refused"), [(1, "fine", "ok")])

    def test_a_nonce_reused_for_another_text_or_not_a_short_string_is_refused(self):
        ann = self.join("misuse", name="ann", client="tab-1")
        ann.send_json("message", {"text": "first", "nonce": "n-1"})
        ann.receive_event("ack")
        for nonce, text, expected in (("n-1", "second", "already used"), ("x" * 65, "long nonce", "1-64"),
                                      (7, "a number", "1-64")):
            with self.subTest(nonce=nonce):
                ann.send_json("message", {"text": text, "nonce": nonce})
                error = ann.receive_event("error")
                self.assertIn(expected, error["detail"])
                self.assertEqual(error.get("nonce"), nonce if isinstance(nonce, str) else None)
        self.assertEqual(self.stored("misuse"), [(1, "first", "n-1")])

    def test_without_a_nonce_there_is_no_ack_as_before(self):
        ann = self.join("plain", name="ann")
        ann.send_json("message", {"text": "no nonce"})
        before, message = ann.receive_until("message")
        self.assertNotIn("ack", [event["event"] for event in before])
        self.assertNotIn("nonce", message)
        ann.send_json("ping", {"after": "message"})  # an ack would have come before this pong
        before, _ = ann.receive_until("pong")
        self.assertNotIn("ack", [event["event"] for event in before])

    def test_chat_say_with_the_same_nonce_twice_posts_once_and_prints_the_same_id(self):
        create_rooms("script")
        outputs = [chat_say(self.redis.url, "script", "deploy done", "--nonce", "deploy-42") for _ in range(2)]
        self.assertEqual([(r.returncode, r.stdout.strip()) for r in outputs], [(0, "posted message 1 to script")] * 2)
        self.assertEqual(self.stored("script"), [(1, "deploy done", "deploy-42")])


class NonceWindowTests(TestCase):
    """Nonces are kept CHAT_NONCE_WINDOW seconds; pruning them costs a bounded batch per PRUNE_EVERY messages."""

    def age(self, room, seconds):
        Message.objects.filter(room__name=room).update(created=Message.objects.get(room__name=room, seq=1).created
                                                        - timedelta(seconds=seconds))

    @override_settings(CHAT_NONCE_WINDOW=60)
    def test_a_repeat_within_the_window_is_the_original_and_after_it_a_new_message(self):
        first = post_message("window", "hello", "ann", "#000000", nonce="n", sender="client:a")
        self.assertEqual(post_message("window", "hello", "ann", "#000000", nonce="n", sender="client:a").pk, first.pk)
        self.age("window", 61)
        again = post_message("window", "hello", "ann", "#000000", nonce="n", sender="client:a")
        self.assertEqual(again.seq, 2)
        self.assertEqual(list(Message.objects.order_by("seq").values_list("nonce", flat=True)), [None, "n"])

    @override_settings(CHAT_NONCE_WINDOW=60)
    def test_old_nonces_are_cleared_a_batch_at_a_time_so_the_index_stays_bounded(self):
        for i in range(PRUNE_EVERY - 1):
            post_message("busy", f"m{i}", "ann", "#000000", nonce=f"n{i}", sender="client:a")
        self.age("busy", 61)
        self.assertEqual(Message.objects.filter(nonce__isnull=False).count(), PRUNE_EVERY - 1)
        post_message("busy", "the 100th", "ann", "#000000", nonce="last", sender="client:a")
        kept = list(Message.objects.filter(nonce__isnull=False).values_list("nonce", flat=True))
        self.assertEqual(kept, ["last"])  # the 99 past the window cleared in one batch (<= PRUNE_BATCH)
        self.assertGreater(PRUNE_BATCH, PRUNE_EVERY)
        self.assertEqual(Room.objects.get(name="busy").last_seq, PRUNE_EVERY)
