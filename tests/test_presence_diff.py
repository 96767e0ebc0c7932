"""Presence diffs: coalescing in one worker, idempotence on the client, the bound on member lists."""

import json

import gevent
import redis
from django.test import SimpleTestCase

from realtime.fanout.brokers import broker_for
from realtime.fanout.brokers.base import Names
from realtime.presence import InProcessStore, Page, Presence, RedisStore, store_for
from realtime.presence.diff import PendingDiff
from realtime.presence.events import announcement, assemble
from realtime.testing import RedisServer
from tests.member_list import MemberList


def info(member_id, name):
    return json.dumps({"id": member_id, "name": name})


def diff_data(seq, count, joins=(), leaves=()):
    return {"seq": seq, "count": count, "joins": {i: {"id": i, "name": n} for i, n in joins},
            "leaves": {i: {"id": i, "name": n} for i, n in leaves}}


class PendingDiffTests(SimpleTestCase):
    def test_a_window_of_changes_is_one_diff_and_a_join_then_leave_in_it_is_never_announced(self):
        diff = PendingDiff()
        diff.join("a", info("a", "ann"))
        diff.join("b", info("b", "bob"))
        diff.update("a", info("a", "annie"))  # a new name inside the window: one join, with it
        diff.leave("b", info("b", "bob"))  # came and went inside the window: nobody hears of bob
        diff.leave("c", info("c", "carol"))  # announced in an earlier window: her leave goes out
        self.assertEqual(diff.joins, {"a": info("a", "annie")})
        self.assertEqual(diff.leaves, {"c": info("c", "carol")})
        self.assertEqual(diff.removed, {"b", "c"})  # both leave the shared list

    def test_an_unsent_diff_followed_by_a_later_one_equals_one_diff_of_all_changes(self):
        first, later = PendingDiff(), PendingDiff()
        first.join("a", info("a", "ann"))
        first.join("b", info("b", "bob"))
        later.leave("a", info("a", "ann"))  # ann joined in the unsent diff: never announced at all
        later.update("b", info("b", "robert"))
        later.join("d", info("d", "dave"))
        later.expire("e", info("e", "eve"))
        merged = first.then(later)
        self.assertEqual(merged.joins, {"b": info("b", "robert"), "d": info("d", "dave")})
        self.assertEqual(merged.leaves, {"e": info("e", "eve")})
        self.assertEqual(merged.removed, {"a"})

    def test_the_event_text_is_json_with_the_store_s_seq_and_count(self):
        diff = PendingDiff()
        diff.join("a", info("a", "änn"))
        diff.leave("c", info("c", "carol"))
        head, tail, page_limit = announcement(diff, {"room": "lobby"}, limit=100)
        self.assertEqual(page_limit, 0)  # a diff: no page in it
        event = json.loads(assemble(head, 7, 3, tail))
        self.assertEqual(event, {"event": "presence_diff", "data": {
            "room": "lobby", "seq": 7, "count": 3, "joins": {"a": {"id": "a", "name": "änn"}},
            "leaves": {"c": {"id": "c", "name": "carol"}}}})


    def test_a_crowd_s_diff_lists_at_most_the_limit_of_joins_new_names_first_and_every_leave(self):
        diff = PendingDiff()
        for i in range(10):
            diff.join(f"j{i}", info(f"j{i}", f"joiner {i}"))
        diff.update("known", info("known", "new name"))
        for i in range(7):
            diff.leave(f"l{i}", info(f"l{i}", f"leaver {i}"))
        head, tail, _ = announcement(diff, {}, limit=8)
        data = json.loads(assemble(head, 1, 50, tail))["data"]
        self.assertEqual(len(data["joins"]), 8)
        self.assertIn("known", data["joins"])  # a new name of someone listed is never left out
        self.assertEqual(data["joins_omitted"], 3)
        self.assertEqual(len(data["leaves"]), 7)

    def test_more_leaves_than_the_limit_go_out_as_the_first_page_after_them_with_the_numbers(self):
        # A worker with thousands of members restarted: listing every leave would cost each of the
        # thousands left a frame the size of the room. They get a page instead, and start over.
        diff = PendingDiff()
        diff.join("j", info("j", "joiner"))
        for i in range(7):
            diff.leave(f"l{i}", info(f"l{i}", f"leaver {i}"))
        head, tail, page_limit = announcement(diff, {"room": "lobby"}, limit=3)
        self.assertEqual(page_limit, 3)
        page = Page(0, 0, "c", [info("a", "ann"), info("b", "bob"), info("c", "carol")])
        event = json.loads(assemble(head, 9, 40, tail, page))
        self.assertEqual(event, {"event": "presence", "data": {
            "room": "lobby", "seq": 9, "count": 40, "next": "c", "joined": 1, "left": 7,
            "members": [{"id": i, "name": n} for i, n in (("a", "ann"), ("b", "bob"), ("c", "carol"))]}})


class StoreChoiceTests(SimpleTestCase):
    """Presence picks its store from what a broker declares, never from its kind."""

    def test_without_redis_the_lists_are_this_process_s_and_diffs_go_out_through_the_broker(self):
        broker = broker_for("")
        published = []
        broker.start(lambda channel, payload: published.append((channel, payload)))
        store = store_for(broker, ttl=30)
        self.assertIsInstance(store, InProcessStore)
        diff = PendingDiff()
        diff.join("a", info("a", "ann"))
        store.flush("room", diff, *announcement(diff, {}, limit=10))
        self.assertEqual([(channel, json.loads(payload)["event"]) for channel, payload in published],
                         [("room", "presence_diff")])

    def test_with_redis_the_lists_are_in_the_broker_s_redis_under_its_names(self):
        for url, publish in (("redis://127.0.0.1:6379/0", "PUBLISH"), ("redis+sentinel://127.0.0.1:26379/primary/0",
                                                                      "PUBLISH"),
                             ("redis+cluster://127.0.0.1:7000/", "SPUBLISH")):  # made without connecting
            with self.subTest(url=url):
                broker = broker_for(url, prefix="site:")
                store = store_for(broker, ttl=30)
                self.assertIsInstance(store, RedisStore)
                self.assertEqual((store.client, store.names, store.publish), (broker.client, broker.names, publish))
                self.assertEqual(store.keys("chat:x")[0], broker.names.key("presence", "chat:x"))


class PageEventTests(SimpleTestCase):
    def test_a_page_is_a_presence_or_members_event_with_the_infos_as_they_are(self):
        page = Page(12, 40, "b", [info("a", "änn"), info("b", "bob")])
        for kind in ("presence", "members"):
            self.assertEqual(json.loads(page.event(kind, {"room": "lobby"})), {"event": kind, "data": {
                "room": "lobby", "seq": 12, "count": 40, "next": "b",
                "members": [{"id": "a", "name": "änn"}, {"id": "b", "name": "bob"}]}})
        self.assertEqual(json.loads(Page(0, 0, None).event("members", {}))["data"],
                         {"seq": 0, "count": 0, "next": None, "members": []})


class MemberListTests(SimpleTestCase):
    def joined(self):
        members = MemberList()
        members.apply("presence", {"seq": 10, "count": 2, "members": [{"id": "a", "name": "ann"},
                                                                       {"id": "b", "name": "bob"}]})
        return members

    def test_a_diff_applied_twice_or_one_the_list_already_reflects_changes_nothing(self):
        members = self.joined()
        members.apply("presence_diff", diff_data(9, 1, leaves=[("a", "ann")]))  # older than the list
        self.assertEqual(set(members.members), {"a", "b"})
        diff = diff_data(11, 3, joins=[("c", "carol"), ("b", "robert")], leaves=[("a", "ann")])
        members.apply("presence_diff", diff)
        members.apply("presence_diff", diff)
        members.apply("presence_diff", diff_data(12, 2, joins=[("c", "carol")], leaves=[("x", "unknown")]))
        self.assertEqual({i: m["name"] for i, m in members.members.items()}, {"b": "robert", "c": "carol"})
        self.assertEqual(members.count, 2)

    def test_diffs_that_overtake_the_list_wait_for_it(self):
        members = MemberList()
        members.apply("presence_diff", diff_data(11, 2, leaves=[("a", "ann")]))
        members.apply("presence_diff", diff_data(10, 2, joins=[("a", "ann")]))
        members.apply("presence", {"seq": 10, "count": 2, "members": [{"id": "a", "name": "ann"},
                                                                       {"id": "b", "name": "bob"}]})
        self.assertEqual(set(members.members), {"b"})
        self.assertEqual((members.seq, members.count), (11, 2))

    def test_a_page_older_than_the_diffs_applied_is_refused_to_be_asked_again(self):
        members = self.joined()
        members.apply("presence_diff", diff_data(12, 1, leaves=[("b", "bob")]))
        self.assertFalse(members.apply("members", {"seq": 11, "members": [{"id": "b", "name": "bob"}]}))
        self.assertNotIn("b", members.members)  # no ghost
        self.assertTrue(members.apply("members", {"seq": 12, "members": [{"id": "z", "name": "zed"}]}))
        self.assertIn("z", members.members)

    def test_joins_left_out_of_a_complete_list_send_the_client_back_to_the_first_page(self):
        members = self.joined()  # the whole room on one page: nothing to ask
        self.assertIsNone(members.next)
        crowd = diff_data(11, 9, joins=[("c", "carol")])
        crowd["joins_omitted"] = 6  # six more joined, ids anywhere before or after "a" and "b"
        members.apply("presence_diff", crowd)
        self.assertEqual(members.next, "")  # ask for {"after": ""}
        members.apply("members", {"seq": 11, "next": "c", "members": [{"id": "0", "name": "zero"},
                                                                     {"id": "a", "name": "ann"}, {"id": "c", "name": "carol"}]})
        self.assertEqual(members.next, "c")
        members.apply("members", {"seq": 11, "next": None, "members": [{"id": "d", "name": "dan"}]})
        self.assertIsNone(members.next)
        self.assertEqual(set(members.members), {"0", "a", "b", "c", "d"})

    def test_joins_left_out_during_a_pass_start_another_once_it_ends(self):
        members = MemberList()
        members.apply("presence", {"seq": 10, "count": 4, "next": "b", "members": [{"id": "a", "name": "ann"},
                                                                                  {"id": "b", "name": "bob"}]})
        crowd = diff_data(11, 8, joins=[("x", "xavier")])
        crowd["joins_omitted"] = 3  # some may sort before "b": this pass will not find them
        members.apply("presence_diff", crowd)
        self.assertEqual(members.next, "b")  # the pass goes on first
        members.apply("members", {"seq": 11, "next": None, "members": [{"id": "c", "name": "carol"}]})
        self.assertEqual(members.next, "")  # then starts again
        members.apply("members", {"seq": 11, "next": None, "members": [{"id": "a0", "name": "amy"}]})
        self.assertIsNone(members.next)  # nothing was left out since: done

    def test_a_reset_starts_the_list_over_unless_the_list_is_as_new(self):
        joined = {"seq": 10, "count": 3, "next": None, "members": [{"id": "me", "name": "me"}]}
        reset = {"seq": 10, "count": 2, "next": None, "joined": 0, "left": 900, "members": [{"id": "a", "name": "ann"}]}
        members = MemberList()  # the joiner's own page, then a reset read before it at the same seq
        members.apply("presence", joined)
        members.apply("presence", reset)
        self.assertEqual(set(members.members), {"me"})
        members.apply("presence", {**reset, "seq": 11})  # after it: the list starts over
        self.assertEqual((set(members.members), members.count, members.seq), ({"a"}, 2, 11))
        members = MemberList()  # the reset overtook the joiner's own page
        members.apply("presence", reset)
        members.apply("presence", joined)  # same seq, and it lists the joiner: it wins
        self.assertEqual(set(members.members), {"me"})
        members.apply("presence", {**joined, "seq": 9, "members": [{"id": "ghost", "name": "gone"}]})
        self.assertEqual(set(members.members), {"me"})  # older than the list: changes nothing


def many_leave(presence, next_event):
    """Seven members join (one diff), then four of them leave in one window (limit 3): the event
    that announces the leaves, and its seq above the first."""
    for i in range(7):
        presence.join("room", f"m{i}", {"name": f"member {i}"}, labels={"room": "r"})
    presence.flush()
    first = next_event()["data"]
    for i in (0, 2, 4, 6):
        presence.leave("room", f"m{i}")
    presence.flush()
    event = next_event()
    return event["event"], event["data"].pop("seq") > first["seq"], event["data"]


# The first page after the leaves, in id order, with the cursor after it (a full page has one), and
# the numbers.
MANY_LEFT = ("presence", True, {"room": "r", "count": 3, "next": "m5", "joined": 0, "left": 4, "members": [
    {"id": f"m{i}", "name": f"member {i}"} for i in (1, 3, 5)]})


class LocalManyLeavesTests(SimpleTestCase):
    def test_many_leaves_go_out_as_the_first_page_after_them(self):
        events = []
        presence = Presence(InProcessStore(publish=lambda group, text: events.append(json.loads(text))),
                            refresh=10, window=1, page_size=3)
        presence._start = lambda: None
        self.assertEqual(many_leave(presence, events.pop), MANY_LEFT)


class RoundTripStore(InProcessStore):
    """The in-process store behind a round trip: each read takes a while and is counted."""

    def __init__(self):
        super().__init__(publish=lambda group, text: None)
        self.reads = []  # the number of joiners each read touched

    def page(self, group, after, limit, joining):
        self.reads.append(len(joining))
        gevent.sleep(0.01)
        return super().page(group, after, limit, joining)


class JoinBatchTests(SimpleTestCase):
    def setUp(self):
        self.store = RoundTripStore()
        self.presence = Presence(self.store, refresh=10, window=1, page_size=5)
        self.presence._start = lambda: None

    def join_at_once(self, count, group="room"):
        joiners = [gevent.spawn(self.presence.join, group, f"m{i:02}", {"name": f"member {i}"}) for i in range(count)]
        gevent.joinall(joiners, raise_error=True)
        return [joiner.value for joiner in joiners]

    def test_a_crowd_joining_at_once_shares_a_few_reads_and_each_joiner_gets_a_bounded_page(self):
        pages = self.join_at_once(40)
        # The first joiner's read is on its way while the other 39 come: they share the next one.
        self.assertEqual(self.store.reads, [1, 39])
        self.assertEqual([page.count for page in pages], [1] + [40] * 39)
        self.assertTrue(all(len(page.members) == 5 for page in pages[1:]))
        self.assertIs(pages[1].event("presence", {"room": "r"}), pages[39].event("presence", {"room": "r"}))
        self.assertEqual(sorted(self.store.groups["room"]), [f"m{i:02}" for i in range(40)])  # everyone listed

    def test_while_a_crowd_keeps_coming_a_read_waits_a_moment_for_the_joiners_behind(self):
        self.presence.join("room", "first", {"name": "first"})  # its read just ended: the room is busy
        joiners = [gevent.spawn_later(i * 0.001, self.presence.join, "room", f"m{i}", {"name": "x"}) for i in range(4)]
        gevent.joinall(joiners, raise_error=True)
        # Without the wait, the first of the four would read alone and the other three after it.
        self.assertEqual(self.store.reads, [1, 4])
        self.assertEqual({joiner.value.count for joiner in joiners}, {5})

    def test_a_joiner_killed_while_it_waits_does_not_strand_those_sharing_its_read(self):
        self.presence.join("room", "first", {"name": "first"})
        waiting = gevent.spawn(self.presence.join, "room", "killed", {"name": "x"})
        sharer = gevent.spawn_later(0.001, self.presence.join, "room", "sharer", {"name": "y"})
        gevent.sleep(0.002)  # both are in one read that has not started: its first joiner waits
        waiting.kill()
        sharer.join(timeout=2)
        self.assertTrue(sharer.ready(), "the sharer of a killed joiner's read waited forever")
        self.assertEqual(sharer.value.count, 2)  # it read again, for itself: first and sharer are listed
        self.assertEqual(self.presence.join("room", "later", {"name": "z"}).count, 3)

    def test_groups_read_on_their_own_and_nothing_is_left_behind(self):
        joiners = [gevent.spawn(self.presence.join, group, f"{group}-{i}", {"name": "x"})
                   for i in range(3) for group in ("a", "b")]
        gevent.joinall(joiners, raise_error=True)
        self.assertEqual(sorted(self.store.reads), [1, 1, 2, 2])
        self.assertEqual((self.presence.join_reads.pending, self.presence.join_reads.running), ({}, {}))

    def test_a_failed_read_gives_each_joiner_of_its_batch_no_page_and_the_next_read_works(self):
        page = self.store.page
        self.store.page = lambda *args: (gevent.sleep(0.01), (_ for _ in ()).throw(redis.ConnectionError("down")))[1]
        self.assertEqual(self.join_at_once(4), [None] * 4)  # the socket works on without the list
        self.store.page = page
        self.assertEqual(self.presence.join("room", "late", {"name": "late"}).members, [{"id": "late", "name": "late"}])
        # The four are still this worker's members: its refresher lists them again at its next touch.
        self.assertEqual(len(self.presence.local["room"]), 5)


class RedisPresenceTests(SimpleTestCase):
    """The store's scripts on a real redis-server, driven without a worker."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)

    def setUp(self):
        self.client = redis.Redis.from_url(self.redis.url)
        self.client.flushall()
        self.presence = Presence(RedisStore(self.client, ttl=30, names=Names()), refresh=10, window=1, page_size=3)
        self.presence._start = lambda: None  # flushes are called by the test, not on a timer

    def test_the_list_on_join_is_bounded_and_the_cursor_pages_through_everyone(self):
        for i in range(7):
            page = self.presence.join("room", f"m{i}", {"name": f"member {i}"})
            self.assertLessEqual(len(page.members), 3)
        self.assertEqual(page.count, 7)
        seen, after = [], ""
        while True:
            page = self.presence.page("room", after)
            self.assertLessEqual(len(page.members), 3)
            seen += [member["id"] for member in page.members]
            if page.next is None:
                break
            after = page.next
        self.assertEqual(seen, [f"m{i}" for i in range(7)])  # each once, in id order

    def test_one_flush_publishes_one_diff_of_the_window_with_the_count_and_a_rising_seq(self):
        listener = self.client.pubsub(ignore_subscribe_messages=True)
        listener.subscribe("room")
        listener.get_message(timeout=1)
        for i in range(5):
            self.presence.join("room", f"m{i}", {"name": f"member {i}"}, labels={"room": "r"})
        self.presence.leave("room", "m4")  # within the window: never announced
        self.presence.flush()
        self.presence.leave("room", "m0")
        self.presence.update("room", "m1", {"name": "renamed"})
        self.presence.flush()
        self.presence.flush()  # nothing pending: nothing sent
        first, second = (json.loads(listener.get_message(timeout=2)["data"])["data"] for _ in range(2))
        self.assertIsNone(listener.get_message(timeout=0.2))
        # Four joined in the window; a diff lists at most a page of them (3 here): the count has all.
        self.assertEqual((len(first["joins"]), first["joins_omitted"], first["leaves"], first["count"]), (3, 1, {}, 4))
        self.assertLess(set(first["joins"]), {"m0", "m1", "m2", "m3"})
        self.assertEqual((second["joins"]["m1"]["name"], list(second["leaves"]), second["count"]), ("renamed", ["m0"], 3))
        self.assertGreater(second["seq"], first["seq"])
        self.assertEqual(self.presence.page("room").seq, second["seq"])
        listener.close()

    def test_many_leaves_go_out_as_the_first_page_after_them(self):
        listener = self.client.pubsub(ignore_subscribe_messages=True)
        listener.subscribe("room")
        listener.get_message(timeout=1)
        self.assertEqual(many_leave(self.presence, lambda: json.loads(listener.get_message(timeout=2)["data"])),
                         MANY_LEFT)
        listener.close()

    def test_a_diff_that_could_not_be_sent_goes_out_with_the_next(self):
        self.presence.join("room", "a", {"name": "ann"})
        store = self.presence.store
        flush = store.flush
        store.flush = lambda *args: (_ for _ in ()).throw(redis.ConnectionError("Redis is down"))
        self.presence.flush()
        store.flush = flush
        self.presence.join("room", "b", {"name": "bob"})
        listener = self.client.pubsub(ignore_subscribe_messages=True)
        listener.subscribe("room")
        listener.get_message(timeout=1)
        self.presence.flush()
        diff = json.loads(listener.get_message(timeout=2)["data"])["data"]
        self.assertEqual(sorted(diff["joins"]), ["a", "b"])
        listener.close()
