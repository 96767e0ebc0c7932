"""Presence: who is in a room, across all workers, and no ghosts once a worker is killed."""

import signal
import time

from realtime.testing import LiveWebSocketTestCase
from tests.history import create_rooms

# Small in tests so that they are quick; the defaults are 30 s and 10 s.
TTL, REFRESH = 1.0, 0.25
# A killed worker's members get their `leave` within TTL + REFRESH (docs/protocol.md), plus
# scheduling slack on a busy test machine.
LEAVE_BOUND = TTL + REFRESH + 1.0


def names(members):
    return [member["name"] for member in members]


class PresenceTestMixin:
    def join(self, room, worker=None, **query):
        """Connect; return (client, its welcome, the presence list it got on joining)."""
        create_rooms(room)
        client = self.connect(f"/chat/{room}/", worker=worker, **query)
        welcome = client.receive_event("welcome")
        return client, welcome, client.receive_event("presence")["members"]


class PresenceAcrossWorkersTests(PresenceTestMixin, LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True
    worker_env = {"PRESENCE_TTL": str(TTL), "PRESENCE_REFRESH": str(REFRESH)}

    def test_list_on_join_covers_every_worker_then_join_nick_and_leave_events(self):
        ann, ann_welcome, members = self.join("who", self.workers[0], name="ann", color="#ff0000")
        self.assertEqual(members, [{"id": ann_welcome["id"], "name": "ann", "color": "#ff0000"}])
        bob, bob_welcome, members = self.join("who", self.workers[1], name="Bob")
        # Bob, on the other worker, is told Ann is there (sorted by name), himself included.
        self.assertEqual(names(members), ["ann", "Bob"])
        joined = ann.receive_event("join")
        while joined["id"] != bob_welcome["id"]:  # Ann's own join comes first
            joined = ann.receive_event("join")
        self.assertEqual(joined["name"], "Bob")

        bob.send_json("nick", {"name": "Robert", "color": "#00ff00"})
        nick = ann.receive_event("nick")
        self.assertEqual((nick["id"], nick["old_name"], nick["name"]), (bob_welcome["id"], "Bob", "Robert"))
        _, _, members = self.join("who", self.workers[0], name="carol")
        self.assertEqual(names(members), ["ann", "carol", "Robert"])  # the new name everywhere

        bob.close()
        self.assertEqual(ann.receive_event("leave")["id"], bob_welcome["id"])
        _, _, members = self.join("who", self.workers[1], name="dave")
        self.assertEqual(names(members), ["ann", "carol", "dave"])

    def test_members_of_a_killed_worker_leave_within_the_bound(self):
        ann, _, _ = self.join("ghosts", self.workers[0], name="ann")
        _, bob_welcome, _ = self.join("ghosts", self.workers[1], name="bob")
        _, carol_welcome, members = self.join("ghosts", self.workers[1], name="carol")
        self.assertEqual(names(members), ["ann", "bob", "carol"])

        killed_at = time.monotonic()
        self.addCleanup(self.workers[1].start_if_stopped)
        self.workers[1].stop(signal.SIGKILL)  # it cannot tell anyone that bob and carol are gone

        # Ann sees both leave, announced by her own worker's presence refresher, within the bound.
        gone = set()
        while gone != {bob_welcome["id"], carol_welcome["id"]}:
            remaining = LEAVE_BOUND - (time.monotonic() - killed_at)
            gone.add(ann.receive_event("leave", timeout=max(0.01, remaining))["id"])
        print(f"\n[measured] a SIGKILLed worker's members left after {time.monotonic() - killed_at:.2f} s "
              f"(TTL {TTL} s, refresh {REFRESH} s)")
        # Whoever joins now is told only about the living.
        _, _, members = self.join("ghosts", self.workers[0], name="dave")
        self.assertEqual(names(members), ["ann", "dave"])


class InProcessPresenceTests(PresenceTestMixin, LiveWebSocketTestCase):
    """Without REDIS_URL the one worker keeps the lists in memory."""

    def test_list_on_join_and_leave(self):
        ann, ann_welcome, _ = self.join("local", name="ann")
        bob, bob_welcome, members = self.join("local", name="bob")
        self.assertEqual(names(members), ["ann", "bob"])
        bob.close()
        self.assertEqual(ann.receive_event("leave")["id"], bob_welcome["id"])
        _, _, members = self.join("local", name="carol")
        self.assertEqual(names(members), ["ann", "carol"])
