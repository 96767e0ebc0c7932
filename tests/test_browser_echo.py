"""A real browser opens the echo page (served by Django) and echoes through the worker."""

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings

from realtime.testing import WorkerProcess
from tests.browser import by_testid, start_browser, text_of, wait_for


class EchoPageTests(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.browser = start_browser()
        cls.addClassCleanup(cls.browser.quit)
        cls.worker = WorkerProcess().start()
        cls.addClassCleanup(cls.worker.stop)
        # Pages on the live server's port, sockets on the worker's: the development layout.
        settings_override = override_settings(WEBSOCKET_SERVER=f":{cls.worker.port}")
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)

    def test_message_typed_in_the_page_comes_back(self):
        self.browser.get(f"{self.live_server_url}/echo/")
        wait_for(self.browser, lambda d: text_of(d, "status") == "open", message="socket open")
        self.browser.find_element(*by_testid("message-input")).send_keys("hello from chromium")
        self.browser.find_element(*by_testid("send-button")).click()
        wait_for(self.browser, lambda d: "← hello from chromium" in text_of(d, "log"), message="echo in the log")
