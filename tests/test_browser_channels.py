"""The pages on the channel layer, in headless Chromium: one socket per page for every topic it
needs, mentions reaching a user's tabs anywhere through two workers, nothing another member sends
taking your message off the page, a newcomer's way in (sign up, open a room, see it listed), and
the chat page on a phone-sized window."""

import tempfile
from pathlib import Path

from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium.webdriver.common.by import By

from chat.models import Message
from realtime.channels.tokens import issue_token
from realtime.testing import ChannelClient, RedisServer, WorkerProcess, wait_until
from tests.browser import by_testid, frames_sent, log_in, opened_sockets, start_browser, text_of, wait_for
from tests.cut_proxy import CutProxy
from tests.history import create_rooms, store_history


class ChannelPagesTests(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.workers = [WorkerProcess(redis_url=cls.redis.url).start() for _ in range(2)]
        for worker in cls.workers:
            cls.addClassCleanup(worker.stop)
        settings_override = override_settings(WEBSOCKET_SERVER=f":{cls.workers[0].port}", REDIS_URL=cls.redis.url)
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        cls.ann, cls.bob = start_browser(), start_browser()  # two browsers: two cookie jars
        cls.addClassCleanup(cls.ann.quit)
        cls.addClassCleanup(cls.bob.quit)

    def setUp(self):
        for browser in (self.ann, self.bob):
            self.addCleanup(browser.delete_all_cookies)

    def log_in(self, browser, username):
        """`browser` is logged in as a new user `username`."""
        user = User.objects.create_user(username, password="a long enough password")
        log_in(browser, self.live_server_url, user)
        return user

    def open(self, browser, path):
        browser.get(f"{self.live_server_url}{path}")
        wait_for(browser, lambda d: text_of(d, "status") == "live", message=f"{path} live")

    def joined_topics(self, browser):
        return [frame["topic"] for frame in frames_sent(browser, event="join")]

    def messages(self, browser):
        """(state, text) of each message line, read in one go."""
        return [tuple(pair) for pair in browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=messages] [data-testid=message]'))"
            ".map(function (e) { return [e.dataset.state, e.querySelector('.text').textContent]; })")]

    def test_the_chat_and_jobs_pages_carry_all_their_topics_on_one_socket(self):
        user = self.log_in(self.ann, "ann")
        create_rooms("one-socket")
        self.open(self.ann, "/chat/one-socket/")
        wait_for(self.ann, lambda d: d.find_elements(*by_testid("room")), message="the room directory")
        self.assertEqual(sorted(self.joined_topics(self.ann)), ["chat:one-socket", "rooms", f"user:{user.pk}"])
        self.assertEqual(len(opened_sockets(self.ann)), 1)
        self.assertTrue(opened_sockets(self.ann)[0].endswith("/socket/"))

        self.open(self.ann, "/jobs/")
        wait_until(lambda: len(self.joined_topics(self.ann)) == 2, message="the jobs page's joins")
        self.assertEqual(sorted(self.joined_topics(self.ann)), [f"jobs:user:{user.pk}", f"user:{user.pk}"])
        self.assertEqual(len(opened_sockets(self.ann)), 1)

    def test_a_mention_in_one_room_reaches_the_user_in_another_room_and_in_their_second_browser(self):
        bob = self.log_in(self.ann, "bob")  # bob's first browser...
        log_in(self.bob, self.live_server_url, bob)  # ... and his second
        create_rooms("room-a", "room-b")
        self.open(self.ann, "/chat/room-b/")  # ... sits in room B, on the first worker
        with override_settings(WEBSOCKET_SERVER=f":{self.workers[1].port}"):
            self.open(self.bob, "/jobs/")  # ... and his second on the jobs page, on the second worker
        for browser in (self.ann, self.bob):
            wait_until(lambda: f"user:{bob.pk}" in self.joined_topics(browser), message="bob's topic joined")
        carol = User.objects.create_user("carol", password="a long enough password")
        writer = ChannelClient(self.workers[0].url("/socket/"), token=issue_token(carol)[0])
        self.addCleanup(writer.close)
        writer.join("chat:room-a")
        writer.push("chat:room-a", "message", {"text": "@bob have a look at this"})
        for browser in (self.ann, self.bob):
            wait_for(browser, lambda d: d.find_elements(*by_testid("notification")), message="the mention")
            shown = browser.find_element(*by_testid("notification"))
            self.assertIn("carol mentioned you in #room-a", shown.text)
            self.assertIn("@bob have a look at this", shown.text)
            self.assertTrue(shown.find_element(By.TAG_NAME, "a").get_attribute("href").endswith("/chat/room-a/#message-1"))

    def test_another_member_sending_with_my_pending_message_s_nonce_takes_nothing_off_any_page(self):
        create_rooms("nonces")
        proxy = CutProxy(self.workers[0].port)
        self.addCleanup(proxy.close)
        with override_settings(WEBSOCKET_SERVER=f":{proxy.port}"):
            self.open(self.ann, "/chat/nonces/")
        self.open(self.bob, "/chat/nonces/")  # a bystander
        mallory = ChannelClient(self.workers[1].url("/socket/"))  # a plain socket, through the other worker
        self.addCleanup(mallory.close)
        mallory.join("chat:nonces", {"name": "mallory"})

        proxy.replies_lost.set()  # ann's message is stored, but her page hears nothing back: it stays pending
        self.ann.find_element(*by_testid("message-input")).send_keys("ann's words")
        self.ann.find_element(*by_testid("send-button")).click()
        wait_until(lambda: Message.objects.filter(room__name="nonces").count() == 1, message="ann's stored")
        copy = mallory.receive_push("chat:nonces", "message")
        self.assertNotIn("nonce", copy["data"])  # a broadcast never tells her nonce ...
        nonce = self.ann.execute_script(  # ... so the test takes it from ann's tab, as the worst case
            "return JSON.parse(sessionStorage.getItem('realtime.outbox:chat:nonces'))[0].nonce")
        self.assertEqual(mallory.push("chat:nonces", "message", {"text": "ann's words", "nonce": nonce}), {"id": 2})
        wait_for(self.bob, lambda d: self.messages(d) == [("stored", "ann's words")] * 2, message="both on bob's page")
        self.assertEqual(self.messages(self.ann), [("pending", "ann's words")])  # ann's page hears nothing yet

        proxy.replies_lost.clear()
        proxy.cut()  # ann's page reconnects, resumes, resends: acknowledged as her stored message 1
        expected = [("stored", "ann's words"), ("stored", "ann's words")]
        for browser in (self.ann, self.bob):
            wait_for(browser, lambda d: self.messages(d) == expected, 20, "both messages, each once")
        self.assertEqual(self.ann.execute_script("return document.querySelector('[data-id=\"1\"] .text').textContent"),
                         "ann's words")
        senders = list(Message.objects.filter(room__name="nonces").order_by("seq").values_list("sender", flat=True))
        self.assertEqual(len(senders), 2)
        self.assertNotEqual(senders[0], senders[1])  # the same nonce, two senders: two messages

    def test_a_guest_signs_up_opens_a_room_from_the_form_and_sees_it_listed_with_its_count(self):
        browser = self.ann
        self.open(browser, "/chat/")
        field = browser.find_element(By.ID, "id_name")
        field.send_keys("book-club")
        browser.find_element(*by_testid("open-room-button")).click()  # a guest cannot open a new room ...
        wait_for(browser, lambda d: d.find_elements(*by_testid("open-room-error")), message="the reason")
        self.assertIn("log in or sign up to open it", text_of(browser, "open-room-error"))  # ... and is told why

        browser.find_element(*by_testid("sign-up")).click()
        browser.find_element(By.ID, "id_username").send_keys("newcomer")
        browser.find_element(By.ID, "id_password1").send_keys("a long enough password")
        browser.find_element(By.ID, "id_password2").send_keys("a long enough password")
        browser.find_element(*by_testid("signup-button")).click()
        wait_for(browser, lambda d: text_of(d, "username") == "newcomer", message="logged in after signing up")
        browser.find_element(*by_testid("log-out")).click()  # out, and in again through the login form
        wait_for(browser, lambda d: d.find_elements(*by_testid("log-in")), message="logged out")
        browser.find_element(*by_testid("log-in")).click()
        browser.find_element(By.ID, "id_username").send_keys("newcomer")
        browser.find_element(By.ID, "id_password").send_keys("a long enough password")
        browser.find_element(*by_testid("login-button")).click()
        wait_for(browser, lambda d: text_of(d, "username") == "newcomer", message="logged in")

        wait_for(browser, lambda d: text_of(d, "status") == "live", message="the chat live")
        browser.find_element(By.ID, "id_name").send_keys("Book-Club")
        browser.find_element(*by_testid("open-room-button")).click()
        wait_for(browser, lambda d: d.current_url.endswith("/chat/book-club/"), message="the new room's page")
        wait_for(browser, lambda d: self.directory(d).get("#book-club") == "1", 20, "the room listed with 1 here")
        self.assertEqual(browser.find_element(By.CSS_SELECTOR, '[data-testid="room"] a[aria-current]').text, "#book-club")
        self.open(self.bob, "/chat/book-club/")  # a second member: the count follows
        wait_for(browser, lambda d: self.directory(d).get("#book-club") == "2", 20, "2 here")

    def directory(self, browser):
        return dict(browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=room]')).map(function (e) {"
            " return [e.querySelector('a').textContent, e.querySelector('[data-testid=room-count]').textContent]; })"))

    def test_the_chat_page_fits_a_phone_sized_window(self):
        store_history("phone", 30)
        Message.objects.filter(room__name="phone", seq=30).update(text="a long word " + "x" * 120 + " to wrap")
        browser = self.bob
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 375, "height": 667, "deviceScaleFactor": 1, "mobile": True})
        self.addCleanup(browser.execute_cdp_cmd, "Emulation.clearDeviceMetricsOverride", {})
        self.open(browser, "/chat/phone/")
        wait_for(browser, lambda d: len(self.messages(d)) == 30, message="the history")
        wait_for(browser, lambda d: d.find_elements(*by_testid("room")), message="the directory")
        shot = Path(tempfile.mkdtemp(prefix="chat-phone-")) / "chat-375x667.png"
        browser.save_screenshot(str(shot))
        print(f"\n[screenshot] {shot}")
        self.assertGreater(shot.stat().st_size, 10_000)
        layout = browser.execute_script("""
            function box(selector) { var r = document.querySelector(selector).getBoundingClientRect();
              return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}; }
            var list = document.querySelector('[data-testid=messages]');
            return {viewport: window.innerWidth, page: document.documentElement.scrollWidth,
                    messages: box('[data-testid=messages]'), input: box('[data-testid=message-input]'),
                    send: box('[data-testid=send-button]'), members: box('[data-testid=members]'),
                    rooms: box('[data-testid=rooms]'), scrolls: list.scrollHeight > list.clientHeight,
                    atNewest: list.scrollHeight - list.scrollTop - list.clientHeight < 5};
        """)
        self.assertEqual(layout["viewport"], 375)
        self.assertLessEqual(layout["page"], 375, "nothing sticks out sideways")
        # The messages take the screen's width and about half its height, scroll by themselves and
        # open at the newest; the input and Send sit side by side under them, inside the screen.
        self.assertGreater(layout["messages"]["width"], 300)
        self.assertGreater(layout["messages"]["height"], 250)
        self.assertLess(layout["messages"]["bottom"], 667)
        self.assertTrue(layout["scrolls"] and layout["atNewest"], layout)
        self.assertGreater(layout["input"]["top"], layout["messages"]["bottom"] - 1)
        self.assertAlmostEqual(layout["send"]["top"], layout["input"]["top"], delta=4)
        self.assertLessEqual(layout["send"]["right"], 375)
        self.assertGreater(layout["input"]["width"], 180)
        # One column: who is here, then the rooms, below the conversation.
        self.assertGreater(layout["members"]["top"], layout["send"]["bottom"])
        self.assertGreater(layout["rooms"]["top"], layout["members"]["top"])
