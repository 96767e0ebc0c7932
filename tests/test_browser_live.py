"""Headless Chromium on the live pages, while the websocket worker is killed, restarted and frozen.

Pages come from Django's live server in this process; sockets from a real worker with Redis.
This process stands for the page server: what it posts or reports goes through the same Redis.
"""

import signal
import time

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of

from chat.models import Room
from chat.services import post_message
from jobs.models import Job
from jobs.services import report
from realtime.testing import RedisServer, WebSocketClient, WebSocketWorker
from tests.browser import by_testid, start_browser, text_of, wait_for

HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT = 0.5, 1.5


class LivePagesTests(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.worker = WebSocketWorker(redis_url=cls.redis.url, env={"CLOCK_INTERVAL": "0.2"}).start()
        cls.addClassCleanup(cls.worker.stop)
        settings_override = override_settings(
            WEBSOCKET_SERVER=f":{cls.worker.port}", REDIS_URL=cls.redis.url, JOB_STEP_SECONDS=0.2,
            CLIENT_HEARTBEAT_INTERVAL=HEARTBEAT_INTERVAL, CLIENT_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT)
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        cls.browser = start_browser()
        cls.addClassCleanup(cls.browser.quit)

    def setUp(self):
        super().setUp()
        self.addCleanup(self.worker_running_again)

    def worker_running_again(self):
        self.worker.start_if_stopped()  # after SIGKILL
        self.worker.signal(signal.SIGCONT)  # after SIGSTOP; harmless otherwise

    def open(self, path):
        self.browser.get(f"{self.live_server_url}{path}")
        self.wait_for_status("live")

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

    def test_chat_heals_after_the_worker_is_killed_and_restarted_showing_what_was_missed_once(self):
        self.open("/chat/heal/")
        post_message("heal", "before the crash", "bob", "#0000ff")
        self.wait_for_messages(["before the crash"])

        self.worker.stop(signal.SIGKILL)
        self.wait_for_status("reconnecting")  # the user sees the page is trying
        for i in range(3):  # posted meanwhile through other workers: stored, nobody here to get them live
            post_message("heal", f"while down {i}", "bob", "#0000ff")
        self.worker.start()  # the same port

        self.wait_for_status("live")
        self.wait_for_messages(["before the crash", "while down 0", "while down 1", "while down 2"])
        post_message("heal", "after", "bob", "#0000ff")
        # Each message exactly once, in order, and live delivery works again.
        self.wait_for_messages(["before the crash", "while down 0", "while down 1", "while down 2", "after"])

    def test_chat_notices_a_frozen_server_by_its_heartbeat_and_catches_up(self):
        self.open("/chat/frozen/")
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

    def members(self):
        return self.texts('[data-testid="member"]')

    def test_chat_lists_who_is_here_and_follows_joins_and_leaves(self):
        self.open("/chat/people/")
        wait_for(self.browser, lambda d: len(self.members()) == 1, message="me in the list")
        me = self.members()[0]
        self.assertTrue(me.endswith(" (you)"), me)
        zed = WebSocketClient(self.worker.url("/chat/people/", name="Zed"))
        zed.receive_event("welcome")
        wait_for(self.browser, lambda d: self.members() == [me, "Zed"], message="Zed listed")
        zed.close()
        wait_for(self.browser, lambda d: self.members() == [me], message="Zed gone")

    def test_jobs_page_shows_a_started_job_live_to_the_end(self):
        self.open("/jobs/")
        self.browser.find_element(By.ID, "id_steps").clear()
        self.browser.find_element(By.ID, "id_steps").send_keys("20")  # 20 steps of 0.2 s
        button = self.browser.find_element(*by_testid("start-job"))
        button.click()  # a POST with the CSRF token, then back here
        wait_for(self.browser, staleness_of(button), message="the page after the POST")
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
        job = Job()
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

    def test_clock_page_ticks_and_stop_gets_goodbye(self):
        self.open("/time/")
        wait_for(self.browser, lambda d: text_of(d, "tick").isdigit(), message="a tick")
        first = text_of(self.browser, "tick")
        wait_for(self.browser, lambda d: text_of(d, "tick") != first, message="the next tick")
        self.assertRegex(text_of(self.browser, "utc"), r"^\d\d:\d\d:\d\d$")
        self.browser.find_element(*by_testid("stop-button")).click()
        wait_for(self.browser, lambda d: "Bye" in text_of(d, "goodbye"), message="goodbye")
        self.wait_for_status("closed")  # the server closed with 1000: the page does not reconnect
