"""Presence: who is in a room, across all workers, as coalesced diffs; no ghosts once a worker is killed."""

import signal
import time

from tests.member_list import MemberList
from realtime.testing import DEFAULT_TIMEOUT, LiveWebSocketTestCase
from tests.history import create_rooms

# Small in tests so that they are quick; the defaults are 30 s, 10 s, 1 s and 100.
TTL, REFRESH, WINDOW, PAGE_SIZE = 1.0, 0.25, 0.2, 5
# A killed worker's members get their `leave` within TTL + REFRESH + WINDOW (docs/protocol.md),
# plus scheduling slack on a busy test machine.
LEAVE_BOUND = TTL + REFRESH + WINDOW + 1.0
PRESENCE_ENV = {"PRESENCE_TTL": str(TTL), "PRESENCE_REFRESH": str(REFRESH),
                "PRESENCE_DIFF_WINDOW": str(WINDOW), "PRESENCE_PAGE_SIZE": str(PAGE_SIZE)}


def names(members):
    return sorted((member["name"] for member in members.values()), key=str.lower)


class Member:
    """A test client in a room that follows the member list like a conforming client."""

    def __init__(self, client):
        self.client, self.list = client, MemberList()
        self.welcome = client.receive_event("welcome")
        self.diffs, self.pages, self.resets = [], [], []
        self.follow_until(lambda: self.list.seq is not None)

    @property
    def id(self):
        return self.welcome["id"]

    def follow_until(self, condition, timeout=DEFAULT_TIMEOUT, what="the member list"):
        """Apply presence events until `condition()` holds; fail with what the list shows if it does not."""
        deadline = time.monotonic() + timeout
        while not condition():
            try:
                message = self.client.receive_json(max(0.01, deadline - time.monotonic()))
            except Exception:
                raise AssertionError(f"{what} never came; {self.welcome['name']} sees {names(self.list.members)}, "
                                     f"count {self.list.count}") from None
            if message.get("event") == "presence_diff":
                self.diffs.append(message["data"])
            elif message.get("event") == "presence" and "left" in message["data"]:
                self.resets.append(message["data"])  # the list after many leaves
            elif message.get("event") == "presence":  # the list on joining, as sent
                self.first_page = {member["id"]: member for member in message["data"]["members"]}
                self.first_next = message["data"]["next"]
            elif message.get("event") == "members":
                self.pages.append(message["data"])
            self.list.apply(message.get("event"), message.get("data"))

    def sees(self, expected, what=None):
        self.follow_until(lambda: names(self.list.members) == sorted(expected, key=str.lower)
                          and self.list.count == len(expected), what=what or f"the list {expected}")

    def pages_until_it_sees(self, expected):
        """Follow the list as a client that shows all of it: ask for the page `next` names whenever
        there is one (a diff that left joins out makes it "", from the start) until it lists `expected`."""
        expected = sorted(expected, key=str.lower)
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while names(self.list.members) != expected or self.list.count != len(expected) or self.list.next is not None:
            left = deadline - time.monotonic()
            if self.list.next is not None:
                pages = len(self.pages)
                self.client.send_json("members", {"after": self.list.next})
                self.follow_until(lambda: len(self.pages) > pages, left, what=f"the page after {self.list.next!r}")
            else:  # nothing to ask: what is missing can only come by diff
                diffs = len(self.diffs)
                self.follow_until(lambda: len(self.diffs) > diffs, left, what=f"the list {expected}")


class PresenceTestMixin:
    def join(self, room, worker=None, **query):
        create_rooms(room)
        return Member(self.connect(f"/chat/{room}/", worker=worker, **query))


class PresenceAcrossWorkersTests(PresenceTestMixin, LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True
    worker_env = PRESENCE_ENV

    def test_list_on_join_covers_every_worker_then_diffs_bring_joins_nicks_and_leaves(self):
        ann = self.join("who", self.workers[0], name="ann", color="#ff0000")
        self.assertEqual(list(ann.first_page.values()), [{"id": ann.id, "name": "ann", "color": "#ff0000"}])
        bob = self.join("who", self.workers[1], name="Bob")
        # Bob, on the other worker, is told Ann is there, himself included.
        self.assertEqual(names(bob.first_page), ["ann", "Bob"])
        ann.sees(["ann", "Bob"])

        bob.client.send_json("nick", {"name": "Robert", "color": "#00ff00"})
        ann.sees(["ann", "Robert"])
        self.assertEqual(ann.list.members[bob.id]["color"], "#00ff00")
        carol = self.join("who", self.workers[0], name="carol")
        self.assertEqual(names(carol.first_page), ["ann", "carol", "Robert"])  # the new name everywhere

        bob.client.close()
        for member in (ann, carol):
            member.sees(["ann", "carol"])
        dave = self.join("who", self.workers[1], name="dave")
        self.assertEqual(names(dave.first_page), ["ann", "carol", "dave"])

    def test_a_crowd_joining_at_once_costs_each_member_a_few_diffs_not_one_event_per_joiner(self):
        ann = self.join("crowd", self.workers[0], name="ann")
        # 30 joiners over both workers, as fast as the test can connect them.
        started = time.monotonic()
        clients = [self.connect("/chat/crowd/", worker=self.workers[i % 2], name=f"m{i:02}") for i in range(30)]
        crowd = [Member(client) for client in clients]
        everyone = ["ann"] + [f"m{i:02}" for i in range(30)]
        # Every joiner is announced to Ann, listed or counted in `joins_omitted` (her own join may be
        # counted there too, if it shared their window), and the count is right.
        announced = lambda: sum(len(d["joins"]) + d.get("joins_omitted", 0) - (ann.id in d["joins"]) for d in ann.diffs)
        ann.follow_until(lambda: ann.list.count == 31 and announced() >= 30, what="30 joins announced, a count of 31")
        # No diff lists more than a page of joins: the count has them all, pages list them.
        self.assertLessEqual(max(len(diff["joins"]) for diff in ann.diffs), PAGE_SIZE)
        for member in crowd:  # they got a bounded first page and the diffs after it, and the count
            member.follow_until(lambda member=member: member.list.count == 31, what="a count of 31")
        elapsed = time.monotonic() - started
        # At most one diff per worker per window, however many joined in it.
        self.assertLessEqual(len(ann.diffs), 2 * (elapsed / WINDOW + 1), [len(d["joins"]) for d in ann.diffs])
        print(f"\n[measured] 30 joiners in {elapsed:.2f} s reached a member in {len(ann.diffs)} diffs, "
              f"{sum(bool(d.get('joins_omitted')) for d in ann.diffs)} of them leaving joiners out "
              f"(window {WINDOW} s, 2 workers)")
        # The bound: nobody got more than PAGE_SIZE members on joining; the rest page by page.
        self.assertLessEqual(max(len(member.first_page) for member in crowd), PAGE_SIZE)
        # A client that shows the whole list gets everyone by asking for the pages `next` names: Ann,
        # whose first page was complete (only her) until diffs left joiners out, and the last joiner,
        # whose first page was (most likely) one of several.
        for member in (ann, crowd[-1]):
            member.pages_until_it_sees(everyone)
            self.assertLessEqual(max((len(page["members"]) for page in member.pages), default=0), PAGE_SIZE)

    def test_members_of_a_killed_worker_leave_within_the_bound(self):
        ann = self.join("ghosts", self.workers[0], name="ann")
        self.join("ghosts", self.workers[1], name="bob")
        carol = self.join("ghosts", self.workers[1], name="carol")
        self.assertEqual(names(carol.first_page), ["ann", "bob", "carol"])
        ann.sees(["ann", "bob", "carol"])

        killed_at = time.monotonic()
        self.addCleanup(self.workers[1].start_if_stopped)
        self.workers[1].stop(signal.SIGKILL)  # it cannot tell anyone that bob and carol are gone

        # Ann sees both leave, in a diff of her own worker (its refresher swept them), within the bound.
        ann.sees(["ann"], what="bob and carol gone")
        took = time.monotonic() - killed_at
        print(f"\n[measured] a SIGKILLed worker's members left after {took:.2f} s "
              f"(TTL {TTL} s, refresh {REFRESH} s, window {WINDOW} s)")
        self.assertLess(took, LEAVE_BOUND)
        # Whoever joins now is told only about the living.
        dave = self.join("ghosts", self.workers[0], name="dave")
        self.assertEqual(names(dave.first_page), ["ann", "dave"])

    def test_a_restarted_workers_many_leaves_reach_the_others_as_one_page_not_a_list_of_every_leave(self):
        ann = self.join("restart", self.workers[0], name="ann")
        for i in range(20):
            self.join("restart", self.workers[1], name=f"m{i:02}")
        ann.follow_until(lambda: ann.list.count == 21, what="a count of 21")
        diffs_before = len(ann.diffs)
        self.addCleanup(self.workers[1].start_if_stopped)
        self.workers[1].stop()  # SIGTERM: its clients are closed (1001) and their leaves flushed
        # Ann, on the other worker, gets the list as it is after them: only her, count 1.
        ann.sees(["ann"], what="the 20 gone")
        self.assertTrue(ann.resets, "no presence event with the leaves' numbers came")
        self.assertEqual(sum(reset["left"] for reset in ann.resets) + sum(
            len(diff["leaves"]) for diff in ann.diffs[diffs_before:]), 20)
        # Every diff lists at most a page of leaves: 20 leaves never cost Ann a frame of 20 infos.
        self.assertLessEqual(max((len(diff["leaves"]) for diff in ann.diffs), default=0), PAGE_SIZE)
        self.assertLessEqual(max(len(reset["members"]) for reset in ann.resets), PAGE_SIZE)

    def test_a_bad_cursor_gets_a_clear_error_and_the_connection_stays(self):
        ann = self.join("cursor", name="ann")
        ann.client.send_json("members", {"after": 42})
        error = ann.client.receive_event("error")
        self.assertEqual(error["code"], "invalid_cursor")
        self.assertIn("'after'", error["detail"])
        ann.client.send_json("members", {"after": ""})  # "": the first page again
        self.assertEqual(names({m["id"]: m for m in ann.client.receive_event("members")["members"]}), ["ann"])


class InProcessPresenceTests(PresenceTestMixin, LiveWebSocketTestCase):
    """Without REDIS_URL the one worker keeps the lists in memory."""

    worker_env = PRESENCE_ENV

    def test_list_on_join_and_diffs(self):
        ann = self.join("local", name="ann")
        bob = self.join("local", name="bob")
        self.assertEqual(names(bob.first_page), ["ann", "bob"])
        ann.sees(["ann", "bob"])
        bob.client.close()
        ann.sees(["ann"])
        carol = self.join("local", name="carol")
        self.assertEqual(names(carol.first_page), ["ann", "carol"])
