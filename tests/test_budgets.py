"""Posting and join budgets: what one client (an account, or a guest's address) may post and join,
on all its sockets and every worker together; over it nothing is done, and the client is told when
to try again.

The arithmetic (realtime/budgets.py) on a clock of our own and on a real Redis; the client address
(realtime/addresses.py); then real workers sharing one Redis, and the chat page's outbox in Chromium.
"""

import socket
import time
from unittest import mock

import redis
from selenium.webdriver.common.by import By
from redis.backoff import NoBackoff
from redis.retry import Retry
from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import Client, RequestFactory, SimpleTestCase, override_settings

from chat.models import Message
from realtime.addresses import client_address, client_network
from realtime.budgets import HOLD_OFF_MAX, HOLD_OFF_SPREAD, InProcessBudgets, Rate, RedisBudgets, hold_off
from realtime.fanout.brokers.base import Names
from realtime.testing import (ChannelClient, LiveWebSocketTestCase, RedisServer, WebSocketClient, WorkerProcess,
                              free_port)
from tests.browser import by_testid, start_browser, text_of, wait_for
from tests.history import RoomClientsMixin, create_rooms


def make_budgets_whole(redis_url):
    """Forget the posting budgets the workers keep in this Redis: every client's is whole again."""
    with redis.Redis.from_url(redis_url) as client:
        if keys := client.keys("budget:*"):
            client.delete(*keys)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class InProcessBudgetTests(SimpleTestCase):
    def setUp(self):
        self.clock = Clock()
        self.budgets = InProcessBudgets(self.clock)

    def test_a_burst_at_once_then_the_rate_and_a_refusal_says_exactly_when(self):
        rate = Rate(per_second=2, burst=3)
        self.assertEqual([self.budgets.spend("a", rate, 1) for _ in range(3)], [0.0] * 3)
        self.assertAlmostEqual(self.budgets.spend("a", rate, 1), 0.5)  # one unit comes back every 0.5 s
        self.assertAlmostEqual(self.budgets.spend("a", rate, 1), 0.5)  # a refusal spends nothing
        self.clock.now += 0.5
        self.assertEqual(self.budgets.spend("a", rate, 1), 0.0)
        self.assertAlmostEqual(self.budgets.spend("b", rate, 1), 0.0)  # another client's budget is its own
        self.clock.now += 10  # a budget fills up to its burst, no more
        self.assertEqual([self.budgets.spend("a", rate, 1) for _ in range(4)], [0.0, 0.0, 0.0, 0.5])

    def test_a_cost_counts_as_that_many_units(self):
        rate = Rate(per_second=1, burst=4)
        self.assertEqual(self.budgets.spend("a", rate, 3), 0.0)
        self.assertAlmostEqual(self.budgets.spend("a", rate, 3), 2.0)  # 1 unit left: 2 more to come

    def test_clients_whose_budget_is_whole_are_forgotten_a_sweep_at_a_time(self):
        self.budgets.whole_at.SWEEP_ABOVE = 10
        rate = Rate(per_second=1, burst=1)
        for i in range(10):
            self.budgets.spend(f"c{i}", rate, 1)
        self.assertEqual(len(self.budgets.whole_at.at), 10)
        self.clock.now += 2  # every budget whole again
        self.budgets.spend("new", rate, 1)  # past the threshold: the sweep keeps only this one
        self.assertEqual(list(self.budgets.whole_at.at), ["new"])


class HoldOffTests(SimpleTestCase):
    """How long a refused socket reads nothing (budgets.hold_off): how long each sleeps is recorded."""

    def hold_off_all(self, waits):
        slept = []
        with mock.patch("gevent.sleep", slept.append):
            for wait in waits:
                hold_off(wait)
        return slept

    def test_a_client_s_refused_sockets_wake_one_at_a_time_not_together_at_the_moment_they_were_told(self):
        # 100 sockets of one client refused until the same moment, 0.8 s away. Woken together, the
        # worker would refuse all 100 in one burst that every other socket waits behind.
        slept = sorted(self.hold_off_all([0.8] * 100))
        self.assertGreaterEqual(slept[0], 0.8)  # none is read before its client's budget is back
        self.assertLessEqual(slept[-1], 0.8 + HOLD_OFF_SPREAD)
        # Spread over 0.5 s: a window of 40 ms holds about 8 of them; none holds a third.
        crowded = max(sum(start <= moment < start + 0.04 for moment in slept) for start in slept)
        self.assertLess(crowded, 34, slept)

    def test_a_long_wait_holds_off_at_most_the_maximum_and_its_spread(self):
        # However long until its client's budget is back: its pings must still be answered in time.
        slept = self.hold_off_all([30.0] * 20)
        self.assertTrue(all(HOLD_OFF_MAX <= moment <= HOLD_OFF_MAX + HOLD_OFF_SPREAD for moment in slept), slept)


class RedisBudgetTests(SimpleTestCase):
    """The same arithmetic in budgets.lua, on a real redis-server's clock, as every worker shares it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)

    def setUp(self):
        self.client = redis.Redis.from_url(self.redis.url)
        self.addCleanup(self.client.close)
        self.client.flushall()

    def test_two_processes_share_one_budget_and_a_refusal_says_when(self):
        rate = Rate(per_second=1, burst=3)
        one, other = RedisBudgets(self.client, Names("site:")), RedisBudgets(self.client, Names("site:"))
        self.assertEqual([one.spend("chat-post:addr:x", rate, 1), other.spend("chat-post:addr:x", rate, 2)], [0, 0])
        wait = other.spend("chat-post:addr:x", rate, 1)
        self.assertTrue(0.9 < wait <= 1.0, wait)  # the next unit comes back a second after the burst
        self.assertEqual(one.spend("chat-post:addr:y", rate, 3), 0)  # another client's budget is its own
        # One key per client and budget, with the site's prefix, gone once the budget is whole again.
        self.assertEqual(sorted(self.client.keys()), [b"site:budget:chat-post:addr:x", b"site:budget:chat-post:addr:y"])
        self.assertTrue(2000 < self.client.pttl("site:budget:chat-post:addr:x") <= 3000)

    def test_a_client_refused_is_refused_here_until_its_next_unit_is_back_without_asking_redis(self):
        clock = Clock()
        budgets = RedisBudgets(self.client, Names(), clock)
        rate = Rate(per_second=2, burst=1)
        self.assertEqual(budgets.spend("k", rate, 1), 0)
        first = budgets.spend("k", rate, 1)
        self.assertTrue(0.4 < first <= 0.5, first)
        calls = self.client.info("commandstats")["cmdstat_evalsha"]["calls"]
        clock.now += 0.1
        self.assertAlmostEqual(budgets.spend("k", rate, 1), first - 0.1)  # told here
        self.assertAlmostEqual(budgets.spend("k", rate, 3), first - 0.1 + 1.0)  # and for 3 units, 2 intervals more
        self.assertEqual(self.client.info("commandstats")["cmdstat_evalsha"]["calls"], calls)
        clock.now += first  # its unit is back (on Redis's clock too, by now): Redis decides again
        time.sleep(first)
        self.assertEqual(budgets.spend("k", rate, 1), 0)
        self.assertEqual(self.client.info("commandstats")["cmdstat_evalsha"]["calls"], calls + 1)

    def test_with_redis_unreachable_each_process_counts_alone_and_says_so_once(self):
        down = RedisBudgets(redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)), Names())
        rate = Rate(per_second=1, burst=2)
        with self.assertLogs("realtime.budgets", "WARNING") as logs:
            spent = [down.spend("k", rate, 1) for _ in range(3)]
        self.assertEqual(spent[:2], [0.0, 0.0])
        self.assertGreater(spent[2], 0.9)
        self.assertEqual(len(logs.output), 1)
        self.assertIn("unreachable", logs.output[0])


class ClientAddressTests(SimpleTestCase):
    def request(self, remote, forwarded=None):
        headers = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            headers["HTTP_X_FORWARDED_FOR"] = forwarded
        return RequestFactory().get("/chat/", **headers)

    def test_without_the_proxy_the_peer_is_the_client_and_the_header_is_ignored(self):
        self.assertEqual(client_address(self.request("198.51.100.7", "203.0.113.1")), "198.51.100.7")

    @override_settings(WEBSOCKET_BEHIND_PROXY=1)
    def test_behind_the_proxy_the_last_hop_is_the_client_and_what_it_claimed_before_is_not(self):
        # nginx appends the address it saw to whatever the client sent.
        self.assertEqual(client_address(self.request("127.0.0.1", "203.0.113.1, 198.51.100.7")), "198.51.100.7")
        self.assertEqual(client_address(self.request("127.0.0.1", "198.51.100.7")), "198.51.100.7")
        self.assertEqual(client_address(self.request("127.0.0.1")), "127.0.0.1")  # not through the proxy

    def test_an_ipv6_client_is_its_slash_64_and_an_ipv4_one_its_address(self):
        self.assertEqual(client_network(self.request("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64")
        self.assertEqual(client_network(self.request("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64")
        self.assertEqual(client_network(self.request("::ffff:198.51.100.7")), "198.51.100.7")
        self.assertEqual(client_network(self.request("198.51.100.7")), "198.51.100.7")


GUEST_RATE, GUEST_BURST = 0.5, 5  # per address: 5 at once, then one every 2 s


class PostingBudgetTests(RoomClientsMixin, LiveWebSocketTestCase):
    """Two workers sharing one Redis; every test client comes from 127.0.0.1: one guest address."""

    worker_count = 2
    use_redis = True
    worker_env = {"CHAT_GUEST_POST_RATE": str(GUEST_RATE), "CHAT_GUEST_POST_BURST": str(GUEST_BURST),
                  "CHAT_POST_RATE": "0.5", "CHAT_POST_BURST": "5"}

    def setUp(self):
        super().setUp()
        make_budgets_whole(self.redis.url)  # each test starts with the address's budget whole

    def answers(self, client, count):
        """The next `count` answers to messages sent with a nonce (`ack`, or `error` naming it)."""
        found = []
        while len(found) < count:
            event = client.receive_json()
            if event["event"] in ("ack", "error") and "nonce" in event["data"]:
                found.append(event)
        return found

    def test_guest_sockets_of_one_address_on_two_workers_share_its_budget_and_hear_when_to_retry(self):
        sockets = [self.join("budget", worker=self.workers[i % 2], client=f"tab-{i}") for i in range(8)]
        started = time.monotonic()
        for round_ in range(5):  # 40 messages at once, flat out
            for i, sock in enumerate(sockets):
                sock.send_json("message", {"text": f"{i}:{round_}", "nonce": f"{i}:{round_}"})
        answers = [answer for sock in sockets for answer in self.answers(sock, 5)]
        elapsed = time.monotonic() - started
        acks = [a["data"] for a in answers if a["event"] == "ack"]
        refusals = [a["data"] for a in answers if a["event"] == "error"]
        stored = Message.objects.filter(room__name="budget").count()
        print(f"\n[measured] 8 guest sockets of one address, 40 messages at once through two workers: "
              f"{stored} stored in {elapsed:.2f} s (budget: {GUEST_BURST} at once, then {GUEST_RATE}/s)")
        # What the address's budget allows: its burst, and what came back meanwhile. Each worker
        # counting alone would have let twice the burst through.
        self.assertGreaterEqual(stored, GUEST_BURST)
        self.assertLessEqual(stored, GUEST_BURST + int(GUEST_RATE * elapsed) + 1)
        self.assertLess(stored, 2 * GUEST_BURST)
        self.assertEqual(len(acks), stored)
        self.assertEqual(len(refusals), 40 - stored)
        for refusal in refusals:  # refused for now: nothing stored, and when to send it again
            self.assertEqual(refusal["code"], "rate_limited")
            self.assertTrue(0 < refusal["retry_after"] <= 1 / GUEST_RATE + 0.01, refusal)
            self.assertIn("your address's posting budget", refusal["detail"])
        for sock in sockets:  # every socket is still open
            sock.send_json("ping", {"still": "here"})
            self.assertEqual(sock.receive_event("pong"), {"still": "here"})

        # Sent again once the time it was told has passed, a refused message is stored: the client
        # may be told to wait again (the sockets' messages were read over a few seconds, and those
        # read last spent what came back meanwhile), but only until the address's next unit is back.
        refused = refusals[-1]
        sender = sockets[int(refused["nonce"].split(":")[0])]
        for attempt in (1, 2):
            time.sleep(refused["retry_after"])
            sender.send_json("message", {"text": refused["nonce"], "nonce": refused["nonce"]})
            answer = self.answers(sender, 1)[0]
            if answer["event"] == "ack":
                break
            refused = answer["data"]
        self.assertEqual(answer["event"], "ack")

    def test_a_logged_in_user_spends_the_account_s_budget_not_the_address_s(self):
        guest = self.join("accounts", client="guest")
        for i in range(GUEST_BURST + 1):
            guest.send_json("message", {"text": f"g{i}", "nonce": f"g{i}"})
        self.assertEqual(self.answers(guest, GUEST_BURST + 1)[-1]["data"]["code"], "rate_limited")  # the address is spent

        browser = Client()
        browser.force_login(User.objects.create_user("ann", password="a long enough password"))
        ann = self.open_client(self.workers[1].url("/chat/accounts/"), cookie=f"sessionid={browser.cookies['sessionid'].value}")
        ann.receive_event("welcome")
        ann.send_json("message", {"text": "from my account", "nonce": "a1"})
        self.assertEqual(self.answers(ann, 1)[0], {"event": "ack", "data": {"nonce": "a1", "id": GUEST_BURST + 1}})


JOIN_RATE, JOIN_BURST = 1, 4  # per address and per account: 4 joins at once, then one a second


class JoinBudgetTests(LiveWebSocketTestCase):
    """Two workers sharing one Redis. The clients come from 127.0.0.1, one guest address, but for
    those that connect from 127.0.0.2: another address (the loopback interface answers to all of 127/8)."""

    worker_count = 2
    use_redis = True
    worker_env = {"WEBSOCKET_GUEST_JOIN_RATE": str(JOIN_RATE), "WEBSOCKET_GUEST_JOIN_BURST": str(JOIN_BURST),
                  "WEBSOCKET_JOIN_RATE": str(JOIN_RATE), "WEBSOCKET_JOIN_BURST": str(JOIN_BURST)}
    TOPICS = ["clock", "rooms", "chat:one", "chat:two", "chat:three"]  # one more than the burst

    def setUp(self):
        super().setUp()
        make_budgets_whole(self.redis.url)  # each test starts with every budget whole
        create_rooms("one", "two", "three")

    def from_address(self, address, worker, path, client_class=WebSocketClient, **options):
        """A client of `path` on `worker` whose TCP connection comes from `address`."""
        sock = socket.create_connection(("127.0.0.1", worker.port), timeout=10, source_address=(address, 0))
        client = client_class(worker.url(path), socket=sock, **options)
        self.addCleanup(client.close)
        return client

    def assert_refused_for_a_moment(self, response, whose):
        self.assertEqual(response["code"], "rate_limited")
        self.assertTrue(0 < response["retry_after"] <= 1 / JOIN_RATE + 0.01, response)
        self.assertIn(f"your {whose}'s join budget", response["detail"])

    def test_sockets_of_one_address_on_two_workers_share_its_join_budget_and_hear_when_to_join_again(self):
        sockets = [self.from_address("127.0.0.1", worker, "/socket/", ChannelClient) for worker in self.workers]
        for i, topic in enumerate(self.TOPICS[:JOIN_BURST]):  # the address's burst, on two sockets and workers
            self.assertEqual(sockets[i % 2].join(topic)["status"], "ok")
        refused = sockets[0].request(self.TOPICS[-1], "join", {"params": {}})
        self.assertEqual(refused["status"], "error")
        self.assert_refused_for_a_moment(refused["response"], "address")
        # The socket stays open, with the topics it joined.
        self.assertEqual(sockets[0].call("realtime", "heartbeat")["status"], "ok")
        self.assertEqual(sockets[0].receive_push("clock", "time", timeout=15)["topic"], "clock")

        # Another address, and an account at the same address, have budgets of their own.
        elsewhere = self.from_address("127.0.0.2", self.workers[1], "/socket/", ChannelClient)
        for topic in self.TOPICS[:JOIN_BURST]:
            self.assertEqual(elsewhere.join(topic)["status"], "ok")
        browser = Client()
        browser.force_login(User.objects.create_user("ann", password="a long enough password"))
        ann = self.from_address("127.0.0.1", self.workers[0], "/socket/", ChannelClient,
                                cookie=f"sessionid={browser.cookies['sessionid'].value}")
        for topic in self.TOPICS[:JOIN_BURST]:
            self.assertEqual(ann.join(topic)["status"], "ok")
        self.assert_refused_for_a_moment(ann.request(self.TOPICS[-1], "join", {"params": {}})["response"], "account")

        # Joined again once the time it was told has passed, the refused join succeeds.
        time.sleep(refused["response"]["retry_after"])
        self.assertEqual(sockets[0].join(self.TOPICS[-1])["status"], "ok")

    def test_a_one_topic_route_over_the_budget_is_told_then_joined_on_the_same_socket_after_retry_after(self):
        for _ in range(JOIN_BURST):  # the address's burst: each connect of a one-topic route is a join
            self.from_address("127.0.0.1", self.workers[0], "/chat/one/").receive_event("welcome")
        late = self.from_address("127.0.0.1", self.workers[1], "/chat/one/")
        told = late.receive_json()
        told_at = time.monotonic()
        self.assertEqual(told["event"], "error")
        self.assert_refused_for_a_moment(told["data"], "address")
        # Meanwhile another address joins at once.
        elsewhere = self.from_address("127.0.0.2", self.workers[1], "/chat/one/")
        self.assertEqual(elsewhere.receive_json()["event"], "welcome")
        # The refused socket is joined once the budget allows: its history, then welcome, no error again.
        before, welcome = late.receive_until("welcome")
        self.assertGreaterEqual(time.monotonic() - told_at, told["data"]["retry_after"] - 0.1)
        self.assertEqual([event["event"] for event in before], [])
        self.assertEqual(welcome["room"], "one")


class BudgetPageTests(StaticLiveServerTestCase):
    """The chat page in Chromium, on a worker whose guest budget is small."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.worker = WorkerProcess(redis_url=cls.redis.url, env={
            "CHAT_GUEST_POST_RATE": "2", "CHAT_GUEST_POST_BURST": "2"}).start()
        cls.addClassCleanup(cls.worker.stop)
        settings_override = override_settings(WEBSOCKET_SERVER=f":{cls.worker.port}", REDIS_URL=cls.redis.url)
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        cls.browser = start_browser()
        cls.addClassCleanup(cls.browser.quit)

    def open_room(self, room):
        create_rooms(room)
        self.browser.get(f"{self.live_server_url}/chat/{room}/")
        wait_for(self.browser, lambda d: text_of(d, "status") == "live", message="status live")
        wait_for(self.browser, lambda d: d.find_element(*by_testid("name-input")).get_attribute("value"),
                 message="welcome")

    def say(self, text):
        self.browser.find_element(*by_testid("message-input")).send_keys(text)
        self.browser.find_element(*by_testid("send-button")).click()

    def shown(self):
        return [tuple(pair) for pair in self.browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=messages] [data-testid=message]'))"
            ".map(function (e) { return [e.dataset.state, e.querySelector('.text').textContent]; })")]

    def test_messages_over_the_budget_wait_in_the_outbox_and_all_arrive_in_order(self):
        self.open_room("typist")
        self.browser.execute_script(  # every text the error line shows, from now on
            "var line = document.querySelector('[data-testid=error]'); window.errorsShown = [];"
            "new MutationObserver(function () { window.errorsShown.push(line.textContent); })"
            ".observe(line, {childList: true, characterData: true, subtree: true});")
        texts = [f"line {i}" for i in range(5)]  # typed faster than 2 at once, then 2 a second
        for text in texts:
            self.say(text)
        # Nothing is shown as failed: over the budget, each is sent again when the server said, and
        # all arrive, once each, in the order typed.
        wait_for(self.browser, lambda d: self.shown() == [("stored", text) for text in texts], timeout=15,
                 message="every line stored")
        self.assertEqual(list(Message.objects.filter(room__name="typist").order_by("seq").values_list("text", flat=True)),
                         texts)
        # Meanwhile the user was told why it took a moment, and the notice went once they went through.
        shown = self.browser.execute_script("return window.errorsShown")
        self.assertTrue(any("sent again in a moment" in text for text in shown), shown)
        self.assertEqual(text_of(self.browser, "error"), "")

    def test_a_logged_in_user_s_messages_carry_the_account_mark_that_a_guest_cannot_put_on(self):
        self.open_room("marks")  # a guest, named like the account below
        self.browser.find_element(*by_testid("name-input")).clear()
        self.browser.find_element(*by_testid("name-input")).send_keys("ann")
        self.browser.find_element(*by_testid("message-input")).click()  # the name is sent on change
        self.say("I am ann, really")
        client = Client()
        client.force_login(User.objects.create_user("ann", password="a long enough password"))
        ann = WebSocketClient(self.worker.url("/chat/marks/"), cookie=f"sessionid={client.cookies['sessionid'].value}")
        self.addCleanup(ann.close)
        ann.receive_event("welcome")
        ann.send_json("message", {"text": "the real ann"})
        marks = "return Array.from(document.querySelectorAll('[data-testid=message]')).map(function (e) {" \
                " var mark = e.querySelector('[data-testid=account]');" \
                " return [e.querySelector('.name').textContent, e.querySelector('.text').textContent, mark && mark.title]; })"
        expected = [["ann", "I am ann, really", None], ["ann", "the real ann", "logged in as ann"]]
        wait_for(self.browser, lambda d: d.execute_script(marks) == expected, message=f"the messages {expected}")
        self.assertEqual(self.browser.find_element(By.CSS_SELECTOR, "[data-testid=message] [data-testid=account]").text,
                         "\u2713")
