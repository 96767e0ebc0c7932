"""Retention: old messages go, a bounded batch at a time, never one a resend may still need; a client
resuming from before what is kept is told to start over, and a real task worker keeps it periodic."""

from datetime import timedelta
from unittest import mock

from django.test import TestCase, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from chat import retention
from chat.models import Message, Room
from chat.services import RESUME_LIMIT, backlog, post_message
from realtime.testing import LiveWebSocketTestCase, wait_until
from tests.history import RoomClientsMixin, store_history
from tests.servers import TaskWorker

DAY = 24 * 3600


def age(room, seqs, seconds):
    """Make the room's messages with these ids `seconds` old."""
    Message.objects.filter(room__name=room, seq__in=seqs).update(created=timezone.now() - timedelta(seconds=seconds))


def kept(room):
    return list(Message.objects.filter(room__name=room).order_by("seq").values_list("seq", flat=True))


@override_settings(CHAT_RETENTION_DAYS=30, CHAT_RETENTION_MESSAGES=0, CHAT_NONCE_WINDOW=DAY)
class RetentionRuleTests(TestCase):
    def test_messages_older_than_the_retention_age_go_and_newer_ones_stay(self):
        store_history("old", 6)
        age("old", [1, 2, 3], 31 * DAY)
        age("old", [4], 29 * DAY)
        self.assertEqual(retention.prune(seconds=10), (3, True))
        self.assertEqual(kept("old"), [4, 5, 6])
        self.assertEqual(Room.objects.get(name="old").last_seq, 6)  # ids go on from there

    @override_settings(CHAT_RETENTION_DAYS=0, CHAT_RETENTION_MESSAGES=10)
    def test_a_room_keeps_its_newest_messages_up_to_the_count_and_other_rooms_their_own(self):
        store_history("busy", 25)
        store_history("quiet", 4)
        age("busy", range(1, 26), 2 * DAY)
        age("quiet", range(1, 5), 2 * DAY)
        self.assertEqual(retention.prune(seconds=10), (15, True))
        self.assertEqual(kept("busy"), list(range(16, 26)))
        self.assertEqual(kept("quiet"), [1, 2, 3, 4])

    @override_settings(CHAT_RETENTION_DAYS=0.5, CHAT_RETENTION_MESSAGES=2)
    def test_nothing_younger_than_the_nonce_window_goes_so_a_resend_still_finds_its_original(self):
        first = post_message("resends", "typed once", "ann", "#000000", nonce="n-1", sender="client:a")
        for i in range(4):
            post_message("resends", f"more {i}", "ann", "#000000")
        age("resends", [1, 2, 3, 4, 5], DAY / 2 + 60)  # past the retention age, within the window
        self.assertEqual(retention.prune(seconds=10), (0, True))
        again = post_message("resends", "typed once", "ann", "#000000", nonce="n-1", sender="client:a")
        self.assertEqual((again.pk, again.seq), (first.pk, 1))  # the original: not stored twice
        self.assertEqual(len(kept("resends")), 5)

    @override_settings(CHAT_RETENTION_DAYS=0, CHAT_RETENTION_MESSAGES=1)
    def test_a_run_deletes_a_batch_at_a_time_and_stops_when_its_time_is_up(self):
        store_history("many", 20)
        age("many", range(1, 21), 2 * DAY)
        with mock.patch.object(retention, "BATCH", 7):
            self.assertEqual(retention.prune(seconds=0), (7, False))  # one batch, then out of time
            self.assertEqual(kept("many")[0], 8)  # the oldest first
            self.assertEqual(retention.prune(seconds=10), (12, True))
        self.assertEqual(kept("many"), [20])


class ResumeAfterRetentionTests(TestCase):
    """What a client resuming with `since` gets once the start of the room's history is gone."""

    def setUp(self):
        self.room = store_history("pruned", 60)
        Message.objects.filter(room=self.room, seq__lte=40).delete()  # kept: 41..60

    def test_from_a_deleted_id_it_starts_over_from_recent_history(self):
        messages, resync = backlog(self.room, since=30)
        self.assertEqual((resync, [m.seq for m in messages][-1], len(messages)), ("unknown_since", 60, 20))

    def test_from_the_start_when_the_start_is_gone_it_starts_over_too(self):
        messages, resync = backlog(self.room, since=0)
        self.assertEqual((resync, [m.seq for m in messages][0]), ("unknown_since", 41))

    def test_from_a_kept_id_it_gets_exactly_what_followed(self):
        messages, resync = backlog(self.room, since=45)
        self.assertEqual((resync, [m.seq for m in messages]), (None, list(range(46, 61))))

    def test_from_further_back_than_a_resume_replays_it_is_too_far_behind(self):
        store_history("pruned", RESUME_LIMIT)
        messages, resync = backlog(Room.objects.get(name="pruned"), since=45)
        self.assertEqual(resync, "too_far_behind")


class PeriodicRetentionTests(RoomClientsMixin, LiveWebSocketTestCase):
    """A real task worker prunes on its own (PERIODIC_TASKS), and a client resuming from before
    what is kept gets `resync` unknown_since and the recent history, on a real websocket worker."""

    def test_the_task_worker_prunes_at_start_and_schedules_the_next_run(self):
        store_history("retained", 20)
        tasks = TaskWorker(env={"CHAT_RETENTION_MESSAGES": "5", "CHAT_NONCE_WINDOW": "0"})
        self.addCleanup(tasks.stop)
        tasks.start()
        wait_until(lambda: kept("retained") == list(range(16, 21)), message="the room pruned to its newest 5")
        # The next run waits its period (600 s) after this one ended: one run queued, none running.
        next_run = wait_until(lambda: DBTaskResult.objects.filter(task_path="chat.tasks.prune_messages",
                                                                  status="READY").first(), message="the next run")
        last = DBTaskResult.objects.get(task_path="chat.tasks.prune_messages", status="SUCCESSFUL")
        self.assertEqual(last.return_value, 15)
        self.assertAlmostEqual((next_run.run_after - last.finished_at).total_seconds(), 600, delta=1)

        ann = self.connect("/chat/retained/", since=3)  # her last id was deleted meanwhile
        before, welcome = ann.receive_until("welcome")
        self.assertEqual(before[0]["data"]["reason"], "unknown_since")
        self.assertEqual([m["data"]["id"] for m in before[1:]], list(range(16, 21)))
        self.assertEqual(welcome["last_id"], 20)
