"""Sending from the chat page without loss: what a user types while the worker is frozen shows as
pending, survives the worker's death (and a reload of the page), and reaches the room exactly once."""

import signal
import time

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings

from chat.models import Message, Room
from realtime.testing import RedisServer, WorkerProcess, wait_until
from tests.browser import WorkerRevivalMixin, by_testid, start_browser, text_of, wait_for
from tests.cut_proxy import CutProxy
from tests.history import create_rooms

HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT = 0.5, 1.5
RECONNECT_WINDOW = 0.5


class SendingPageTests(WorkerRevivalMixin, StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.worker = WorkerProcess(redis_url=cls.redis.url).start()
        cls.addClassCleanup(cls.worker.stop)
        settings_override = override_settings(
            WEBSOCKET_SERVER=f":{cls.worker.port}", REDIS_URL=cls.redis.url,
            CLIENT_HEARTBEAT_INTERVAL=HEARTBEAT_INTERVAL, CLIENT_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
            CLIENT_RECONNECT_WINDOW=RECONNECT_WINDOW)
        settings_override.enable()
        cls.addClassCleanup(settings_override.disable)
        cls.ann, cls.bob = start_browser(), start_browser()
        cls.addClassCleanup(cls.ann.quit)
        cls.addClassCleanup(cls.bob.quit)

    def open_room(self, browser, room):
        create_rooms(room)
        browser.get(f"{self.live_server_url}/chat/{room}/")
        self.wait_for_status(browser, "live")
        # The welcome fills in a guest name: after it, sends go out at once.
        wait_for(browser, lambda d: d.find_element(*by_testid("name-input")).get_attribute("value"), message="welcome")

    def wait_for_status(self, browser, status, timeout=20):
        wait_for(browser, lambda d: text_of(d, "status") == status, timeout, f"status {status!r}")

    def say(self, browser, text):
        browser.find_element(*by_testid("message-input")).send_keys(text)
        browser.find_element(*by_testid("send-button")).click()

    def shown(self, browser):
        """(state, text) of every message line, read in one go: state is pending, sent, stored or failed."""
        return [tuple(pair) for pair in browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=messages] [data-testid=message]'))"
            ".map(function (e) { return [e.dataset.state, e.querySelector('.text').textContent]; })")]

    def outbox(self, browser, room):
        return browser.execute_script("return JSON.parse(sessionStorage.getItem(arguments[0]) || '[]')"
                                      ".map(function (e) { return e.data.text; })", f"realtime.outbox:chat:{room}")

    def stored(self, room):
        return list(Message.objects.filter(room__name=room).order_by("seq").values_list("text", flat=True))

    def test_messages_typed_while_the_worker_is_frozen_then_killed_arrive_once_in_order(self):
        self.open_room(self.ann, "outbox")
        self.open_room(self.bob, "outbox")
        # SQLite: a connection open here means the frozen worker never holds the file's last lock.
        self.assertTrue(Room.objects.filter(name="outbox").exists())
        self.worker.signal(signal.SIGSTOP)  # TCP stays up, nothing answers
        texts = ["one", "two", "three"]
        for text in texts:
            self.say(self.ann, text)
        # At once, greyed as pending, in the order typed; kept in the tab's outbox.
        self.assertEqual(self.shown(self.ann), [("pending", text) for text in texts])
        self.assertEqual(self.outbox(self.ann, "outbox"), texts)
        self.assertEqual(self.ann.find_element(*by_testid("message-input")).get_attribute("value"), "")

        self.worker.stop(signal.SIGKILL)  # whatever it had in its socket buffers is gone
        self.worker.start()
        self.wait_for_status(self.ann, "live")
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", text) for text in texts], 20,
                 "the three stored, the pending copies replaced")
        wait_for(self.bob, lambda d: self.shown(d) == [("stored", text) for text in texts], 20, "bob sees each once")
        self.assertEqual(self.stored("outbox"), texts)  # exactly once each, in the order typed
        self.assertEqual(self.outbox(self.ann, "outbox"), [])

    def test_messages_stored_whose_acks_were_lost_with_the_connection_are_not_stored_again(self):
        """The worker stores what the page sent, but its answer is lost and the connection dies.
        The page reconnects: its history holds the message (the pending copy is replaced by nonce),
        and its resend is acknowledged with the stored id instead of being stored twice; the next
        ones, held back until the first was answered (one in flight keeps them in order), follow."""
        proxy = CutProxy(self.worker.port)
        self.addCleanup(proxy.close)
        with override_settings(WEBSOCKET_SERVER=f":{proxy.port}"):
            self.open_room(self.ann, "lost-acks")
        proxy.replies_lost.set()
        texts = ["one", "two", "three"]
        for text in texts:
            self.say(self.ann, text)
        wait_until(lambda: self.stored("lost-acks") == ["one"], message="the first stored by the worker")
        self.assertEqual(self.shown(self.ann), [("pending", text) for text in texts])  # no ack reached the page
        self.assertEqual(self.stored("lost-acks"), ["one"])  # the others wait for its answer
        proxy.replies_lost.clear()
        proxy.cut()
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", text) for text in texts], 20, "each once")
        wait_for(self.ann, lambda d: self.outbox(d, "lost-acks") == [], message="the resends acknowledged")
        self.assertEqual(self.stored("lost-acks"), texts)

    def test_a_message_pending_when_the_page_is_reloaded_is_sent_once_after_it(self):
        self.open_room(self.ann, "reload")
        self.assertTrue(Room.objects.filter(name="reload").exists())
        self.worker.signal(signal.SIGSTOP)
        self.say(self.ann, "typed before the reload")
        self.ann.refresh()  # the page comes from the page server; its socket waits for the frozen worker
        wait_for(self.ann, lambda d: self.shown(d) == [("pending", "typed before the reload")],
                 message="still pending after the reload")
        self.worker.signal(signal.SIGCONT)
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", "typed before the reload")], 20, "stored once")
        self.assertEqual(self.stored("reload"), ["typed before the reload"])

    def test_a_refused_message_shows_its_error_is_not_sent_again_and_can_be_edited(self):
        self.open_room(self.ann, "refused")
        # The input stops at 2,000 characters; a page of another version, or a script, may not.
        self.ann.execute_script("document.querySelector('[data-testid=message-input]').value = 'x'.repeat(2001);")
        self.ann.find_element(*by_testid("send-button")).click()
        wait_for(self.ann, lambda d: self.shown(d) == [("failed", "x" * 2001)], message="refused")
        self.assertIn("at most 2000 characters", text_of(self.ann, "send-error"))  # what the user reads
        # The same text would be refused again: no Retry, an Edit that gives the text back.
        self.assertEqual(self.ann.find_elements(*by_testid("retry")), [])
        self.assertTrue(self.ann.find_element(*by_testid("edit")).is_displayed())
        self.assertEqual(self.outbox(self.ann, "refused"), [])
        self.worker.stop(signal.SIGKILL)  # a reconnect resends what is unacknowledged: not this one
        self.worker.start()
        self.wait_for_status(self.ann, "live")
        self.say(self.ann, "after")
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", "after"), ("failed", "x" * 2001)], 20,
                 message="the next one stored, the refused one still last and failed")
        self.assertEqual(len(self.ann.find_elements(*by_testid("send-error"))), 1)  # one refusal, not two
        self.assertEqual(self.stored("refused"), ["after"])
        self.ann.find_element(*by_testid("edit")).click()
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", "after")], message="the refused one taken back")
        self.assertEqual(self.ann.find_element(*by_testid("message-input")).get_attribute("value"), "x" * 2001)

    @override_settings(CHAT_NONCE_WINDOW=1)  # the page's outbox gives up after 1 s (the worker keeps its own window)
    def test_a_message_not_sent_within_the_window_is_shown_unsent_and_retry_sends_it(self):
        self.open_room(self.ann, "expired")
        self.assertTrue(Room.objects.filter(name="expired").exists())
        self.worker.signal(signal.SIGSTOP)
        self.say(self.ann, "too late")
        time.sleep(1.2)  # the message is now older than the window of 1 s
        # Killed, not thawed: a thawed worker would read the message still waiting in its socket
        # buffer, store it and send its copy to the page (which then shows it stored: also right).
        self.worker.stop(signal.SIGKILL)
        self.worker.start()
        # Sent again after this long, it could be stored twice (the server may have forgotten its
        # nonce): the page says it was not sent and leaves it to the user.
        wait_for(self.ann, lambda d: self.shown(d) == [("failed", "too late")], 20, message="given up")
        self.assertIn("gone for too long", text_of(self.ann, "send-error"))
        self.assertEqual(self.outbox(self.ann, "expired"), [])
        self.assertEqual(self.stored("expired"), [])
        self.ann.find_element(*by_testid("retry")).click()  # sent as a new message
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", "too late")], message="sent on retry")
        self.assertEqual(self.stored("expired"), ["too late"])

    def test_messages_dropped_by_the_rate_limit_are_sent_again_and_stored_once_in_order(self):
        limited = WorkerProcess(redis_url=self.redis.url, env={"WEBSOCKET_RATE_LIMIT": "2", "WEBSOCKET_RATE_BURST": "2"})
        limited.start()
        self.addCleanup(limited.stop)
        # The usual 20 s heartbeat: its pings would take this worker's tokens.
        with override_settings(WEBSOCKET_SERVER=f":{limited.port}", CLIENT_HEARTBEAT_INTERVAL=20):
            self.open_room(self.ann, "limited")
        self.ann.execute_script(  # every error the page shows, kept in window.errorsShown
            "var error = document.querySelector('[data-testid=error]'); window.errorsShown = [];"
            "new MutationObserver(function () { if (error.textContent) window.errorsShown.push(error.textContent); })"
            ".observe(error, {childList: true, characterData: true, subtree: true});")
        texts = [f"quick {i}" for i in range(6)]
        for text in texts:  # faster than 2 a second: the transport drops some (and says rate_limited)
            self.say(self.ann, text)
        wait_for(self.ann, lambda d: self.shown(d) == [("stored", text) for text in texts], 20, "all stored")
        self.assertEqual(self.stored("limited"), texts)  # once each, in the order typed
        errors = self.ann.execute_script("return window.errorsShown")
        self.assertTrue(errors and all("Too many messages" in error for error in errors), errors)  # some were dropped
