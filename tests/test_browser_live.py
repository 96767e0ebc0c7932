"""Headless Chromium on the live pages, while the websocket worker is killed, restarted and frozen.

Pages come from Django's live server in this process; sockets from a real worker with Redis.
This process stands for the page server: what it posts or reports goes through the same Redis.
"""

import re
import signal
import time

from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium.webdriver.common.by import By

from chat.models import Message, Room
from chat.services import post_message, room_channel
from jobs.models import Job
from jobs.services import report
from realtime.fanout.brokers import BrokerUnavailable, publish
from realtime.testing import RedisServer, WebSocketClient, WorkerProcess, free_port
from tests.servers import TaskWorker
from tests.browser import (WorkerRevivalMixin, by_testid, frames_sent, log_in, opened_sockets, start_browser, text_of,
                           wait_for)
from tests.history import create_rooms

HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT = 0.5, 1.5
HOLE_TIMEOUT = 1.0
RECONNECT_WINDOW = 0.5  # the pages come back within half a second of a restart
PRESENCE_PAGE_SIZE = 2  # a crowd of a dozen is a crowd: diffs list 2 joins, pages 2 members


class LivePagesTests(WorkerRevivalMixin, StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.worker = WorkerProcess(redis_url=cls.redis.url, env={"CLOCK_INTERVAL": "0.2",
                                                                   "PRESENCE_PAGE_SIZE": str(PRESENCE_PAGE_SIZE)}).start()
        cls.addClassCleanup(cls.worker.stop)
        settings_override = override_settings(
            WEBSOCKET_SERVER=f":{cls.worker.port}", REDIS_URL=cls.redis.url,
            CLIENT_HEARTBEAT_INTERVAL=HEARTBEAT_INTERVAL, CLIENT_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
            CLIENT_HOLE_TIMEOUT=HOLE_TIMEOUT, CLIENT_RECONNECT_WINDOW=RECONNECT_WINDOW)
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        cls.browser = start_browser()
        cls.addClassCleanup(cls.browser.quit)

    def open(self, path):
        self.browser.get(f"{self.live_server_url}{path}")
        self.wait_for_status("live")

    def open_room(self, room):
        create_rooms(room)  # anonymous users join only rooms that exist
        self.open(f"/chat/{room}/")

    def wait_for_status(self, status, timeout=15):
        wait_for(self.browser, lambda d: text_of(d, "status") == status, timeout, f"status {status!r}")

    def texts(self, selector):
        """The texts of the elements matching `selector`, read in one go (the page may redraw them)."""
        return self.browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(function (e) { return e.textContent; })",
            selector)

    def message_texts(self):
        return self.texts('[data-testid="messages"] [data-testid="message"] .text')

    def wait_for_messages(self, texts):
        wait_for(self.browser, lambda d: self.message_texts() == texts, message=f"messages {texts}")

    def record_status_changes(self):
        """From now on the page keeps every status it shows in window.statusChanges: a reconnect
        shows as "reconnecting", then "live"."""
        self.browser.execute_script(
            "var status = document.querySelector('[data-testid=status]'); window.statusChanges = [];"
            "new MutationObserver(function () { window.statusChanges.push(status.textContent); })"
            ".observe(status, {childList: true, characterData: true, subtree: true});")

    def status_changes(self):
        return self.browser.execute_script("return window.statusChanges")

    def store_without_publishing(self, room, text):
        """post_message while this process cannot reach Redis (a page server cut off from it): the
        message is stored, the poster is told delivery is degraded, and no page gets it live."""
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), self.assertRaises(BrokerUnavailable):
            post_message(room, text, "bob", "#0000ff")
        return Message.objects.get(room__name=room, text=text)

    def assert_heals_after_a_crash_showing_what_was_missed_once(self, room, shown):
        """The worker is killed while the page shows `shown`, and messages are posted meanwhile.
        Once it is back the page resumes from its watermark (it has every id up to that one): it
        shows the missed ones once, in order, repeats nothing, and gets live messages again."""
        self.worker.stop(signal.SIGKILL)
        self.wait_for_status("reconnecting")  # the user sees the page is trying
        for i in range(3):  # posted meanwhile through other workers: stored, nobody here to get them live
            post_message(room, f"while down {i}", "bob", "#0000ff")
        self.worker.start()  # the same port

        self.wait_for_status("live")
        self.wait_for_messages(shown + ["while down 0", "while down 1", "while down 2"])
        post_message(room, "after", "bob", "#0000ff")
        # Each message exactly once, in order, and live delivery works again.
        self.wait_for_messages(shown + ["while down 0", "while down 1", "while down 2", "after"])

    def test_chat_heals_after_the_worker_is_killed_and_restarted_showing_what_was_missed_once(self):
        self.open_room("heal")
        post_message("heal", "before the crash", "bob", "#0000ff")
        self.wait_for_messages(["before the crash"])
        self.assert_heals_after_a_crash_showing_what_was_missed_once("heal", ["before the crash"])

    def test_chat_fetches_a_message_that_was_stored_but_never_delivered_live(self):
        """Bob's message was stored while his server could not reach Redis, so nobody got it live.
        When the next message arrives the page sees the id missing before it: it shows the new one
        at once, and within the hole timeout reconnects and shows the missing one in its place.
        Each message shows once, and after a crash the page resumes from the right point."""
        self.open_room("hole")
        post_message("hole", "first", "bob", "#0000ff")
        self.wait_for_messages(["first"])
        self.record_status_changes()
        self.store_without_publishing("hole", "stored while Redis was unreachable")  # id 2
        post_message("hole", "next", "bob", "#0000ff")  # id 3: live, with the hole at 2 before it
        self.wait_for_messages(["first", "stored while Redis was unreachable", "next"])
        # The hole made the room's topic rejoin from its watermark, on the same socket.
        self.assertEqual(self.status_changes(), [])
        self.assertEqual([frame["data"].get("since") for frame in frames_sent(self.browser, "chat:hole", "join")],
                         [None, 1])
        self.assert_heals_after_a_crash_showing_what_was_missed_once(
            "hole", ["first", "stored while Redis was unreachable", "next"])

    def test_chat_shows_messages_published_out_of_order_once_each_in_id_order_without_reconnecting(self):
        """Two processes posting at once can publish in the other order than their ids: the page
        shows the later one first, then the earlier one in its place, each once, and needs no
        reconnect for it. After a crash it resumes after both."""
        self.open_room("race")
        post_message("race", "first", "bob", "#0000ff")
        self.wait_for_messages(["first"])
        self.record_status_changes()
        second, third = (self.store_without_publishing("race", text) for text in ("second", "third"))
        for message in (third, second):  # id 3 reaches Redis before id 2
            publish(room_channel("race"), message.as_event())
        self.wait_for_messages(["first", "second", "third"])
        time.sleep(2 * HOLE_TIMEOUT)  # a hole timer left running by mistake would reconnect meanwhile
        self.assertEqual(self.status_changes(), [])
        self.assert_heals_after_a_crash_showing_what_was_missed_once("race", ["first", "second", "third"])

    def test_chat_notices_a_frozen_server_by_its_heartbeat_and_catches_up(self):
        self.open_room("frozen")
        # SQLite: the last connection to close (or the first to open) holds the file's exclusive
        # lock for a moment; frozen then, the worker would lock us out. An open connection here
        # means the worker is never the last.
        self.assertTrue(Room.objects.filter(name="frozen").exists())
        self.worker.signal(signal.SIGSTOP)  # TCP stays up, nothing answers: no close event ever comes
        frozen_at = time.monotonic()
        self.wait_for_status("reconnecting")
        noticed_after = time.monotonic() - frozen_at
        print(f"\n[measured] the page noticed a frozen server after {noticed_after:.2f} s "
              f"(heartbeat {HEARTBEAT_INTERVAL} s + timeout {HEARTBEAT_TIMEOUT} s)")
        self.assertLess(noticed_after, HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + 1.5)
        post_message("frozen", "while frozen", "bob", "#0000ff")
        self.worker.signal(signal.SIGCONT)
        self.wait_for_status("live")
        self.wait_for_messages(["while frozen"])

    def test_reconnect_delays_are_spread_over_the_window_the_server_gives(self):
        """Full jitter: a crowd closed with 1001 (or that lost its connection) comes back spread over
        the window, not at once. The page's own client module, with its timers recorded instead of run."""
        self.open("/time/")
        windows, delays = self.browser.execute_async_script("""
            var done = arguments[arguments.length - 1];
            import("realtime").then(function (client) {
              var socket = new client.Socket("ws://example.invalid/socket/", {storage: null, reconnectWindow: 4000});
              var delays = [], realSetTimeout = window.setTimeout;
              var windows = [socket.windowOf("server shutting down; reconnect_window=2.5"), socket.windowOf("")];
              socket.stopped = false;
              window.setTimeout = function (fn, ms) { delays.push(ms); return 0; };
              try {
                for (var i = 0; i < 300; i++) { socket.attempt = 0; socket.scheduleReconnect(windows[1]); }
              } finally { window.setTimeout = realSetTimeout; }
              done([windows, delays]);
            });
        """)
        self.assertEqual(windows, [2500, 4000])  # the server's window wins over the page's default
        self.assertEqual(len(delays), 300)
        self.assertTrue(all(0 <= delay <= 4000 for delay in delays), (min(delays), max(delays)))
        # Spread over the whole window: some come back at once, some at its end (a miss of either
        # tenth by 300 uniform draws has a chance of 2 x 0.9^300, about 1e-14).
        self.assertLess(min(delays), 400)
        self.assertGreater(max(delays), 3600)

    def members(self):
        return self.texts('[data-testid="member"]')

    def count(self):
        return self.browser.find_element(*by_testid("member-count")).text

    def test_chat_lists_who_is_here_and_follows_joins_and_leaves(self):
        self.open_room("people")
        wait_for(self.browser, lambda d: len(self.members()) == 1, message="me in the list")
        me = self.members()[0]
        self.assertTrue(me.endswith(" (you)"), me)
        zed = WebSocketClient(self.worker.url("/chat/people/", name="Zed"))
        zed.receive_event("welcome")
        wait_for(self.browser, lambda d: self.members() == [me, "Zed"] and self.count() == "2",
                 message="Zed listed, 2 here")
        zed.close()
        wait_for(self.browser, lambda d: self.members() == [me] and self.count() == "1", message="Zed gone, 1 here")

    def test_more_finds_the_joiners_a_crowds_diff_left_out_of_a_complete_list(self):
        self.open_room("crowded")
        wait_for(self.browser, lambda d: len(self.members()) == 1, message="me in the list")
        more = self.browser.find_element(*by_testid("more-members"))
        self.assertFalse(more.is_displayed())  # everyone is listed: nothing more to ask
        crowd = [WebSocketClient(self.worker.url("/chat/crowded/", name=f"m{i:02}")) for i in range(12)]
        for client in crowd:
            self.addCleanup(client.close)
            client.receive_event("welcome")
        # 12 joins within a window or two: a diff lists 2 of them, the count has them all.
        wait_for(self.browser, lambda d: self.count() == "13", message="13 here")
        self.assertLess(len(self.members()), 13)
        self.assertTrue(more.is_displayed(), "no way to list the joiners left out")
        deadline = time.monotonic() + 15
        while more.is_displayed() and time.monotonic() < deadline:  # the user clicks More to the end
            more.click()
            time.sleep(0.1)  # a click while the page asked for is on its way asks for nothing
        self.assertFalse(more.is_displayed(), "More never reached the end of the list")
        others = [name for name in self.members() if not name.endswith(" (you)")]
        self.assertEqual((others, len(self.members())), ([f"m{i:02}" for i in range(12)], 13))

    def test_many_leaving_at_once_shows_the_numbers_and_the_list_after_them(self):
        self.open_room("emptying")
        wait_for(self.browser, lambda d: len(self.members()) == 1, message="me in the list")
        me = self.members()[0]
        crowd = [WebSocketClient(self.worker.url("/chat/emptying/", name=f"m{i:02}")) for i in range(6)]
        for client in crowd:
            client.receive_event("welcome")
        wait_for(self.browser, lambda d: self.count() == "7", message="7 here")
        for client in crowd:  # 6 leaves in a window: more than a diff lists (2), so a fresh page comes
            client.close()
        wait_for(self.browser, lambda d: self.members() == [me] and self.count() == "1", message="the 6 gone")
        # The numbers, not a name per leaver ("0 joined, 6 left"; if the closes straddled two windows,
        # one of them still had more than 2 leaves).
        resets = [text for text in self.texts(".notice") if re.fullmatch(r"0 joined, [3-6] left", text)]
        self.assertTrue(resets, self.texts(".notice"))

    def log_in(self):
        """The browser gets a logged-in user's session cookie, until the end of the test; returns the user."""
        user = User.objects.create_user("ann", password="a long enough password")
        log_in(self.browser, self.live_server_url, user)
        self.addCleanup(self.browser.delete_all_cookies)
        return user

    def test_jobs_page_shows_a_started_job_live_to_the_end(self):
        tasks = TaskWorker(redis_url=self.redis.url, env={"JOB_STEP_SECONDS": "0.1"}).start()
        self.addCleanup(tasks.stop)
        self.log_in()
        self.open("/jobs/")
        self.browser.find_element(By.ID, "id_steps").clear()
        self.browser.find_element(By.ID, "id_steps").send_keys("20")  # 20 steps of 0.1 s, in the task worker
        self.browser.execute_script("window.beforeThePost = true")  # a mark only this document has
        self.browser.find_element(*by_testid("start-job")).click()  # a POST with the CSRF token, then back here
        # The page after it: another document, loaded. (Waiting for the old button to go stale asked
        # the old document about it as the page went: "Node with given id does not belong to the document".)
        wait_for(self.browser, lambda d: d.execute_script(
            "return window.beforeThePost === undefined && document.readyState === 'complete'"),
            message="the page after the POST")
        self.wait_for_status("live")
        self.browser.execute_script("window.notReloaded = true")
        row = self.browser.find_element(*by_testid("job"))
        version_on_load = int(row.get_attribute("data-version"))
        wait_for(self.browser, lambda d: row.get_attribute("data-state") == "done", message="the job done")
        self.assertEqual(row.find_element(*by_testid("job-percent")).text, "100%")
        self.assertEqual(row.find_element(By.TAG_NAME, "progress").get_attribute("value"), "100")
        # The bar moved while the page stayed open: the progress came over the socket.
        self.assertGreater(int(row.get_attribute("data-version")), version_on_load)
        self.assertTrue(self.browser.execute_script("return window.notReloaded"))

    def test_jobs_page_opened_or_reconnected_mid_job_shows_the_current_progress_at_once(self):
        job = Job(owner=self.log_in())
        report(job, state=Job.RUNNING, progress=40, detail="Step 4 of 10")
        self.open("/jobs/")
        row = f'[data-job-id="{job.id}"]'
        self.assertEqual(self.browser.find_element(By.CSS_SELECTOR, f"{row} [data-testid=job-percent]").text, "40%")

        self.worker.stop(signal.SIGKILL)
        self.wait_for_status("reconnecting")
        report(job, progress=70, detail="Step 7 of 10")  # published while no worker listens
        self.worker.start()
        self.wait_for_status("live")
        # Nothing was published since: 70% can only come from the state sent on reconnecting.
        wait_for(self.browser, lambda d: d.find_element(By.CSS_SELECTOR, f"{row} [data-testid=job-percent]").text
                 == "70%", timeout=3, message="70% at once after reconnecting")
        report(job, state=Job.FAILED, detail="Out of disk space.")
        wait_for(self.browser, lambda d: d.find_element(By.CSS_SELECTOR, f"{row} [data-testid=job-state]").text
                 == "failed", message="the end shown")
        self.assertEqual(text_of(self.browser, "job-detail"), "Out of disk space.")

    def test_clock_page_ticks_and_stop_leaves_the_clock_topic(self):
        self.open("/time/")
        wait_for(self.browser, lambda d: text_of(d, "tick").isdigit(), message="a tick")
        first = text_of(self.browser, "tick")
        wait_for(self.browser, lambda d: text_of(d, "tick") != first, message="the next tick")
        self.assertRegex(text_of(self.browser, "utc"), r"^\d\d:\d\d:\d\d$")
        self.browser.find_element(*by_testid("stop-button")).click()
        wait_for(self.browser, lambda d: "Stopped" in text_of(d, "goodbye"), message="stopped")
        stopped_at = text_of(self.browser, "tick")
        time.sleep(5 * 0.2)  # five ticks of the clock would have come by now
        self.assertEqual(text_of(self.browser, "tick"), stopped_at)
        self.assertEqual(text_of(self.browser, "status"), "live")  # the socket stays: only the topic was left
        self.assertEqual(len(frames_sent(self.browser, "clock", "leave")), 1)
        self.browser.find_element(*by_testid("stop-button")).click()  # Start
        wait_for(self.browser, lambda d: text_of(d, "tick") != stopped_at, message="ticking again")
        self.assertEqual(len(opened_sockets(self.browser)), 1)
