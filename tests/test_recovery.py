"""What users see when Redis or a worker goes away: nothing stored is lost, and clients resume."""

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.models import User
from django.test import Client, override_settings

import websocket as websocket_client
from chat.models import Message, Room
from chat.services import post_message
from realtime.testing import ChannelClient, LiveWebSocketTestCase, wait_until
from tests.history import RoomClientsMixin, create_rooms


RUNNING = {"state": "running", "restarts": 0, "last_error": None}  # a background loop, in /healthz
# REDIS_HEALTH_CHECK_INTERVAL of these workers (5 s by default): a hung Redis is noticed within it.
HEALTH_INTERVAL = 2.0


class RedisOutageTests(RoomClientsMixin, LiveWebSocketTestCase):
    use_redis = True
    worker_env = {"REDIS_HEALTH_CHECK_INTERVAL": str(HEALTH_INTERVAL)}

    def health(self, worker=None):
        status, _, body = (worker or self.worker).http_get("/healthz")
        return status, json.loads(body)

    def test_a_new_worker_is_healthy_before_its_first_client(self):
        """A load balancer's readiness check must not keep a worker out for having no clients yet."""
        fresh = self.start_worker()
        self.addCleanup(fresh.stop)
        wait_until(lambda: self.health(fresh)[0] == 200, message="a fresh worker to report itself healthy")
        self.assertEqual(self.health(fresh)[1], {"status": "ok", "broker": "redis", "broker_connected": True,
                                                 "connections": 0, "loops": {"broker-listener": RUNNING,
                                                                             "gc-reclaim": RUNNING},
                                                 "tasks": {}})

    def test_redis_killed_and_restarted_mid_chat(self):
        ann, bob = self.join("outage", name="ann", color="#ff0000"), self.join("outage", name="bob", color="#0000ff")
        ann.send_json("message", {"text": "before"})
        self.assertEqual(bob.receive_event("message")["text"], "before")
        self.assertEqual(self.health(), (200, {"status": "ok", "broker": "redis", "broker_connected": True,
                                               "connections": 2, "loops": {"broker-listener": RUNNING,
                                                                           "gc-reclaim": RUNNING,
                                                                           "presence-flusher": RUNNING,
                                                                           "presence-refresher": RUNNING,
                                                                           "connection-sweeper": RUNNING},
                                               "tasks": {}}))

        self.redis.stop()
        wait_until(lambda: self.health()[0] == 503, message="healthz to report the broker down")
        ann.send_json("message", {"text": "during the outage"})
        error = ann.receive_event("error")
        self.assertEqual(error["code"], "delivery_degraded")  # the sender is told; the message is stored
        echo = self.connect("/echo/")
        echo.send("worker still up")
        self.assertEqual(echo.receive(), "worker still up")
        # Someone opens the room meanwhile: its history has the message the others missed.
        cara = self.connect("/chat/outage/", name="cara")
        history, _ = cara.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in history], ["before", "during the outage"])

        self.redis.start()
        wait_until(lambda: self.health()[0] == 200, timeout=15, message="the hub to reconnect")
        self.assertIn("reconnected to Redis; resubscribed", self.worker.log())
        self.assertEqual(self.health()[1]["loops"]["broker-listener"], RUNNING)  # reconnected by itself, no crash
        # Nobody is told to reconnect: the worker catches both up on their open sockets, from the
        # database, then live messages flow again (Cara's history does not count for them).
        for client in (bob, ann):
            before, missed = client.receive_until("message")
            self.assertEqual(missed["text"], "during the outage")
            self.assertNotIn("resync", [event["event"] for event in before])
        ann.send_json("message", {"text": "after"})
        self.assertEqual(bob.receive_event("message")["text"], "after")
        self.assertEqual(cara.receive_event("message")["text"], "after")  # not what her history had, again


    def test_a_catch_up_bigger_than_the_send_queue_reaches_every_member_once_in_order_and_nobody_is_closed(self):
        """900 messages of 2,000 control characters (each escapes to 6 bytes in JSON: ~11 MB, nearly
        three times the 4 MiB send queue) are stored while Redis is down, and 30 more (360 KB, more
        than the feed holds) are posted live as it comes back, while the worker catches its members
        up. Members with small receive buffers (as on a real network), on the chat's route and on
        /socket/, stay connected and get every message once, in id order, then live ones: nobody is
        closed 1013 and reconnects."""
        missed, live = 900, 30
        big = "\x01" * 2000
        small_buffer = {"sockopt": ((socket.SOL_SOCKET, socket.SO_RCVBUF, 16384),)}
        create_rooms("heavy-blip")
        members = [self.open_client(self.worker.url("/chat/heavy-blip/"), **small_buffer) for _ in range(4)]
        for member in members:
            self.assertEqual(member.receive_event("welcome")["last_id"], 0)
        channel = ChannelClient(self.worker.url("/socket/"), **small_buffer)
        self.addCleanup(channel.close)
        self.assertEqual(channel.join("chat:heavy-blip")["offset"], 0)

        self.redis.stop()
        wait_until(lambda: self.health()[0] == 503, message="healthz to report the broker down")
        room = Room.objects.get(name="heavy-blip")
        Message.objects.bulk_create(Message(room=room, seq=i + 1, name="guest", color="#000000", text=big)
                                    for i in range(missed))
        room.last_seq = missed
        room.save(update_fields=["last_seq"])
        self.redis.start()
        wait_until(lambda: self.health()[0] == 200, timeout=15, message="the hub to reconnect")
        with override_settings(REDIS_URL=self.redis.url):  # live, as the page server would post them
            for _ in range(live):
                post_message("heavy-blip", big, "server", "#555555")
        last = missed + live
        # The operator sees it going on (nobody reads yet: it waits for them, a piece at a time).
        wait_until(lambda: self.health()[1]["tasks"] == {"chat-catch-up": 1}, message="the catch-up in /healthz")

        def message_ids(receive):
            """The ids of the messages a member gets up to the last, and the other events' names."""
            ids, others = [], []
            deadline = time.monotonic() + 90
            while not ids or ids[-1] < last:
                event = json.loads(receive(max(0.01, deadline - time.monotonic())))
                if event["event"] == "message":
                    ids.append(event["data"]["id"] if "offset" not in event else event["offset"])
                else:
                    others.append(event["event"])
            return ids, others

        with ThreadPoolExecutor(len(members) + 1) as readers:  # they read at once, as real clients do
            received = list(readers.map(message_ids, [member.receive for member in members] + [channel.receive]))
        for ids, others in received:
            self.assertEqual(ids, list(range(1, last + 1)))
            self.assertNotIn("resync", others)
        self.assertNotIn('reason="slow_consumer"', self.worker.http_get("/metrics")[2])
        wait_until(lambda: self.health()[1]["tasks"] == {}, message="the catch-up to end")
        members[0].send_json("message", {"text": "after"})
        for member in members:
            self.assertEqual(member.receive_event("message")["id"], last + 1)

    def test_a_redis_that_stops_answering_is_noticed_within_the_interval_and_nothing_is_lost(self):
        """SIGSTOP: Redis keeps its connections but answers nothing, as a hung host or a partition
        does. No TCP reset comes; the worker's health check notices."""
        ann, bob = self.join("hang", name="ann"), self.join("hang", name="bob")
        ann.send_json("message", {"text": "before"})
        last_before = bob.receive_event("message")
        self.assertEqual(self.health()[0], 200)

        self.redis.signal(signal.SIGSTOP)
        self.addCleanup(self.redis.signal, signal.SIGCONT)  # whatever happens, the next test finds it running
        stopped = time.monotonic()
        wait_until(lambda: self.health()[0] == 503, timeout=HEALTH_INTERVAL + 2, message="healthz to say degraded")
        self.assertLess(time.monotonic() - stopped, HEALTH_INTERVAL + 1)
        self.assertIn("Redis unavailable (no answer from Redis for", self.worker.log())
        # Stored; its sender is told within the interval that live delivery is degraded.
        ann.send_json("message", {"text": "during"})
        self.assertEqual(ann.receive_event("error", timeout=HEALTH_INTERVAL + 3)["code"], "delivery_degraded")

        self.redis.signal(signal.SIGCONT)
        wait_until(lambda: self.health()[0] == 200, timeout=15, message="the worker to reconnect")
        # The open sockets are caught up from the database, and live chat goes on.
        for client in (bob, ann):
            _, missed = client.receive_until("message")
            self.assertEqual(missed["text"], "during")
        ann.send_json("message", {"text": "after"})
        self.assertEqual(bob.receive_event("message")["text"], "after")
        # A client that resumes from before the stop has every stored message.
        cara = self.connect("/chat/hang/", since=last_before["id"])
        missed, _welcome = cara.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in missed], ["during", "after"])

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


class GracefulShutdownTests(LiveWebSocketTestCase):
    worker_env = {"WS_GRACEFUL_TIMEOUT": "5"}

    def test_sigterm_stops_taking_clients_then_closes_every_client_with_1001_and_exits_in_time(self):
        create_rooms("shutdown")
        clients = [self.connect("/echo/") for _ in range(3)] + [self.connect("/chat/shutdown/")]
        clients[-1].receive_event("welcome")
        started = time.monotonic()
        self.worker.process.send_signal(signal.SIGTERM)
        self.assertEqual(clients[0].receive_close(), 1001)
        # Told to come back, within a window (the browser client spreads its return over it) ...
        self.assertIn("reconnect_window=", clients[0].close_reason)
        # ... but not here: from the first close on, an upgrade that still reaches this worker is
        # turned away (503) until gunicorn closes its listening socket (then: refused).
        response = self.worker.http_get("/echo/", headers=UPGRADE)
        self.assertIn(response and response[0], (503, None), response)
        if response:
            self.assertIn("shutting down", response[2])
        for client in clients[1:]:
            self.assertEqual(client.receive_close(), 1001)
        self.worker.process.wait(timeout=10)
        self.assertLess(time.monotonic() - started, 5)
        self.assertNotIn("graceful timeout", self.worker.log())


class PrivateRoomTests(LiveWebSocketTestCase):
    def test_private_room_needs_a_logged_in_user_who_chats_under_the_account_name(self):
        Room.objects.create(name="staff", private=True)
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.connect("/chat/staff/")
        self.assertEqual(refused.exception.status_code, 403)

        user = User.objects.create_user("alice", password="a long enough password")
        browser = Client()
        browser.force_login(user)
        client = self.open_client(self.worker.url("/chat/staff/"),
                                  cookie=f"sessionid={browser.cookies['sessionid'].value}")
        self.assertEqual(client.receive_event("welcome")["name"], "alice")
        client.send_json("nick", {"name": "mallory", "color": "#ff0000"})
        self.assertIn("account name", client.receive_event("error")["detail"])
        client.send_json("nick", {"name": "alice", "color": "#00ff00"})
        while (member := list(client.receive_event("presence_diff")["joins"].values()))[0]["color"] != "#00ff00":
            pass  # the diff of her join, if its window closed before she changed colour
        self.assertEqual(member[0]["name"], "alice")  # the colour may change
