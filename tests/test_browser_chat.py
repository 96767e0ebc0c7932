"""Two browsers chat through Django pages and a real worker with Redis."""

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from selenium.webdriver.common.by import By

from realtime.testing import RedisServer, WebSocketWorker
from tests.browser import by_testid, start_browser, text_of, wait_for
from tests.history import create_rooms


class ChatPageTests(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.worker = WebSocketWorker(redis_url=cls.redis.url).start()
        cls.addClassCleanup(cls.worker.stop)
        settings_override = override_settings(WEBSOCKET_SERVER=f":{cls.worker.port}")
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        # Two browser processes: two users, with their own local storage.
        cls.ann, cls.bob = start_browser(), start_browser()
        cls.addClassCleanup(cls.ann.quit)
        cls.addClassCleanup(cls.bob.quit)

    def open_chat(self, browser, name, color):
        create_rooms("browsers")
        browser.get(f"{self.live_server_url}/chat/browsers/")
        wait_for(browser, lambda d: text_of(d, "status") == "live", message="chat live")
        name_input = browser.find_element(*by_testid("name-input"))
        # The welcome fills in a guest name: wait for it, or it could land in the middle of our typing.
        wait_for(browser, lambda d: name_input.get_attribute("value"), message="welcome")
        name_input.clear()
        name_input.send_keys(name)
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
