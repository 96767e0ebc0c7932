"""Headless Debian Chromium driven by Selenium, for page tests (no browser download)."""

import json
import signal
import tempfile

from django.test import Client
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from realtime.testing import require_binary

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1200,900"]


# Run before any script of every page: each WebSocket the page opens, and the frames it sends, are
# kept in window.openedSockets ({url, sent}), so a test can count them and read what went out.
RECORD_SOCKETS = """
(function () {
  var Native = window.WebSocket;
  window.openedSockets = [];
  function Recorded(url, protocols) {
    var ws = protocols === undefined ? new Native(url) : new Native(url, protocols), record = {url: String(url), sent: []};
    window.openedSockets.push(record);
    var send = ws.send;
    ws.send = function (data) { record.sent.push(String(data)); return send.call(ws, data); };
    return ws;
  }
  Recorded.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (name) { Recorded[name] = Native[name]; });
  window.WebSocket = Recorded;
})();
"""


def start_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for flag in FLAGS + [f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(require_binary("chromedriver")), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SOCKETS})
    return driver


def opened_sockets(driver):
    """The URLs of the WebSockets this page opened (reconnects included), in order."""
    return driver.execute_script("return window.openedSockets.map(function (s) { return s.url; })")


def frames_sent(driver, topic=None, event=None):
    """The realtime.v1 frames this page sent (on any of its sockets), parsed; of a topic and event."""
    frames = [json.loads(text) for text in driver.execute_script(
        "return [].concat.apply([], window.openedSockets.map(function (s) { return s.sent; }))")]
    return [frame for frame in frames if (topic is None or frame.get("topic") == topic)
            and (event is None or frame.get("event") == event)]


def by_testid(testid):
    return (By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def wait_for(driver, condition, timeout=10, message=""):
    """Wait until `condition(driver)` is true. An element not there yet or just redrawn counts as
    not yet; on timeout the failure says what the page showed."""
    waiting = WebDriverWait(driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    try:
        return waiting.until(condition, message)
    except TimeoutException:
        raise AssertionError(f"waited {timeout} s for {message}; the page showed: {page_summary(driver)}") from None


def page_summary(driver):
    """The URL, the connection status and the end of the visible text: enough to see why a wait failed."""
    try:
        return driver.execute_script(
            "var s = document.querySelector('[data-testid=status]');"
            "return location.href + ' | status: ' + (s ? s.textContent : '(none)') + ' | text: '"
            " + document.body.innerText.slice(-400).replace(/\\s+/g, ' ');")
    except Exception as error:  # the browser itself is gone: say so instead
        return f"(unreadable: {type(error).__name__}: {str(error).splitlines()[0]})"


def text_of(driver, testid):
    return driver.find_element(*by_testid(testid)).text


def log_in(browser, site_url, user):
    """`browser` gets a session cookie of `user` for the site at `site_url` (until cookies are deleted)."""
    client = Client()
    client.force_login(user)
    browser.get(f"{site_url}/accounts/login/")  # a page of this site: its cookies
    browser.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})


class WorkerRevivalMixin:
    """For a browser test with a class-wide `worker` that tests stop or kill: each test finds it running."""

    def setUp(self):
        super().setUp()
        self.addCleanup(self.worker_running_again)

    def worker_running_again(self):
        self.worker.start_if_stopped()  # after SIGKILL
        self.worker.signal(signal.SIGCONT)  # after SIGSTOP; harmless otherwise
