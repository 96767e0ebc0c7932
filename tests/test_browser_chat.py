"""Two browsers chat through Django pages and a real worker with Redis."""

import re
import time
from datetime import datetime, timezone

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium.webdriver.common.by import By

from realtime.testing import RedisServer, WorkerProcess
from tests.browser import by_testid, start_browser, text_of, wait_for
from chat.models import Message
from tests.history import create_rooms, store_history

DIFF_WINDOW = 0.2  # presence diffs of a fifth of a second: notices come quickly


class ChatPageTests(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.worker = WorkerProcess(redis_url=cls.redis.url, env={"PRESENCE_DIFF_WINDOW": str(DIFF_WINDOW)}).start()
        cls.addClassCleanup(cls.worker.stop)
        settings_override = override_settings(WEBSOCKET_SERVER=f":{cls.worker.port}")
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        # Two browser processes: two users, with their own local storage.
        cls.ann, cls.bob = start_browser(), start_browser()
        cls.addClassCleanup(cls.ann.quit)
        cls.addClassCleanup(cls.bob.quit)

    def open_chat(self, browser, name, color, room="browsers"):
        create_rooms(room)
        browser.get(f"{self.live_server_url}/chat/{room}/")
        wait_for(browser, lambda d: text_of(d, "status") == "live", message="chat live")
        name_input = browser.find_element(*by_testid("name-input"))
        # The welcome fills in a guest name: wait for it, or it could land in the middle of our typing.
        wait_for(browser, lambda d: name_input.get_attribute("value"), message="welcome")
        self.edit_nick(browser, name, color)

    def edit_nick(self, browser, name=None, color=None):
        if name is not None:
            name_input = browser.find_element(*by_testid("name-input"))
            # Into the field first, as a person does: the page fills in a name only while the field is
            # empty and unfocused (the join's reply may come while a stored name is being replaced).
            name_input.click()
            name_input.clear()
            name_input.send_keys(name)
        if color is not None:
            # A colour input has no keyboard entry: set it as a user's picker would, then 'change'.
            browser.execute_script(
                "var c = arguments[0]; c.value = arguments[1]; c.dispatchEvent(new Event('change'));",
                browser.find_element(*by_testid("color-input")), color)

    def say(self, browser, text):
        browser.find_element(*by_testid("message-input")).send_keys(text)
        browser.find_element(*by_testid("send-button")).click()

    def messages(self, browser):
        return browser.find_elements(By.CSS_SELECTOR, '[data-testid="messages"] [data-testid="message"]')

    def test_two_users_see_each_others_messages_with_names_and_colours_as_text(self):
        self.open_chat(self.ann, "Ann", "#ff0000")
        self.open_chat(self.bob, "Bob", "#0000ff")
        self.say(self.ann, "hello from ann")
        self.say(self.bob, "<script>window.pwned = 1</script><b>bold?</b>")

        for browser in (self.ann, self.bob):
            wait_for(browser, lambda d: len(self.messages(d)) >= 2, message="both messages")
            first, second = self.messages(browser)[-2:]
            self.assertEqual(first.find_element(By.CLASS_NAME, "name").text, "Ann")
            self.assertEqual(first.find_element(By.CLASS_NAME, "text").text, "hello from ann")
            self.assertEqual(first.find_element(By.CLASS_NAME, "name").value_of_css_property("color"),
                             "rgba(255, 0, 0, 1)")
            self.assertEqual(second.find_element(By.CLASS_NAME, "name").text, "Bob")
            # Shown literally: no <b> or <script> element was created, no script ran.
            self.assertEqual(second.find_element(By.CLASS_NAME, "text").text,
                             "<script>window.pwned = 1</script><b>bold?</b>")
            self.assertEqual(second.find_elements(By.TAG_NAME, "b"), [])
            self.assertIsNone(browser.execute_script("return window.pwned"))

        # The name is remembered: a reload keeps it.
        self.ann.refresh()
        wait_for(self.ann, lambda d: text_of(d, "status") == "live", message="live after reload")
        self.assertEqual(self.ann.find_element(*by_testid("name-input")).get_attribute("value"), "Ann")

    def notices(self, browser):
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=messages] .notice'), function (e) { return e.textContent; })")

    def members(self, browser):
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=member]'), function (e) { return e.textContent; })")

    def test_a_change_of_name_or_colour_is_announced_once_saying_what_changed(self):
        self.open_chat(self.bob, "Bob", "#0000ff", room="nicks")
        self.open_chat(self.ann, "Ann", "#ff0000", room="nicks")
        wait_for(self.bob, lambda d: "Ann" in self.members(d), message="Ann listed")
        time.sleep(3 * DIFF_WINDOW)  # her join and first name are told: what follows is one change each
        seen = len(self.notices(self.bob))

        self.edit_nick(self.ann, color="#00aa00")  # the colour only
        wait_for(self.bob, lambda d: self.notices(d)[seen:] == ["Ann changed colour"], message="the colour notice")
        self.edit_nick(self.ann, name="Annie", color="#aa00aa")  # one edit of both: one notice
        wait_for(self.bob, lambda d: len(self.notices(d)) > seen + 1, message="the rename notice")
        time.sleep(3 * DIFF_WINDOW)  # a second notice of the same edit would have come by now
        self.assertEqual(self.notices(self.bob)[seen:], ["Ann changed colour", "Ann is now Annie, in a new colour"])
        self.assertFalse([n for n in self.notices(self.bob) if re.fullmatch(r"(.+) is now \1", n)])

    def test_each_message_shows_its_time_in_the_readers_time_zone(self):
        self.bob.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})  # UTC+5:30
        self.addCleanup(self.bob.execute_cdp_cmd, "Emulation.setTimezoneOverride", {"timezoneId": ""})
        store_history("times", 1)
        Message.objects.filter(room__name="times").update(created=datetime(2026, 11, 21, 22, 19, 18, tzinfo=timezone.utc))
        self.open_chat(self.bob, "Bob", "#0000ff", room="times")
        wait_for(self.bob, lambda d: self.messages(d), message="the stored message")
        shown = self.messages(self.bob)[0].find_element(By.CLASS_NAME, "time")
        self.assertIn("03:49", shown.text)  # 22:19 UTC is 03:49 the next morning in India
        self.assertEqual(shown.get_attribute("datetime"), "2026-11-21T22:19:18Z")

    def scroll_state(self, browser):
        """(scrolled to the top, showing the newest message) of the message list."""
        return tuple(browser.execute_script(
            "var m = document.querySelector('[data-testid=messages]');"
            "return [m.scrollTop === 0, m.scrollHeight - m.scrollTop - m.clientHeight < 5];"))

    def test_the_list_follows_the_newest_message_unless_the_reader_scrolled_up(self):
        store_history("scroll", 50)
        self.open_chat(self.ann, "Ann", "#ff0000", room="scroll")
        self.open_chat(self.bob, "Bob", "#0000ff", room="scroll")
        wait_for(self.ann, lambda d: len(self.messages(d)) == 50, message="history")
        self.assertEqual(self.scroll_state(self.ann), (False, True))  # opened at the newest
        self.ann.execute_script("document.querySelector('[data-testid=messages]').scrollTop = 0;")  # reading back
        self.say(self.bob, "while ann reads back")
        wait_for(self.ann, lambda d: len(self.messages(d)) == 51, message="bob's message")
        self.assertEqual(self.scroll_state(self.ann), (True, False))  # left where she was reading
        self.ann.execute_script("var m = document.querySelector('[data-testid=messages]'); m.scrollTop = m.scrollHeight;")
        self.say(self.bob, "ann is back at the bottom")
        wait_for(self.ann, lambda d: len(self.messages(d)) == 52, message="the next one")
        wait_for(self.ann, lambda d: self.scroll_state(d) == (False, True), message="followed to the newest")
        self.say(self.ann, "and her own")  # her own message always brings the newest into view
        wait_for(self.ann, lambda d: len(self.messages(d)) == 53 and self.scroll_state(d) == (False, True),
                 message="her own message in view")
