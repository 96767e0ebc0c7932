"""Chat over real workers and a real redis-server: rooms, fan-out, history, bad input."""

import os
import subprocess
import sys

import websocket as websocket_client
from django.contrib.auth.models import User
from django.test import Client

from chat.models import Room
from realtime.testing import LiveWebSocketTestCase, database_url
from tests.history import RoomClientsMixin, create_rooms, store_history


def chat_say(redis_url, room, text, *options):
    """`manage.py chat_say` in its own process, on the test database and Redis."""
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "manage.py", "chat_say", room, text, *options], env=env,
                          capture_output=True, text=True, timeout=30)


class ChatAcrossWorkersTests(RoomClientsMixin, LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True

    def test_clients_on_two_workers_chat_in_one_room_and_other_rooms_see_nothing(self):
        ann = self.join(worker=self.workers[0], name="ann", color="#ff0000")
        bob = self.join(worker=self.workers[1], name="bob", color="#00ff00")
        elsewhere = self.join("kitchen", worker=self.workers[1])
        ann.send_json("message", {"text": "hi bob"})
        got = bob.receive_event("message")
        self.assertEqual((got["name"], got["color"], got["text"], got["room"]), ("ann", "#ff0000", "hi bob", "lobby"))
        bob.send_json("message", {"text": "hi ann"})
        self.assertEqual(ann.receive_event("message")["text"], "hi bob")  # her own, with its id
        self.assertEqual(ann.receive_event("message")["text"], "hi ann")
        elsewhere.send_json("message", {"text": "marker"})
        # Messages of one connection arrive in order: had lobby leaked, it would come before the marker.
        self.assertEqual(elsewhere.receive_event("message")["text"], "marker")

    def test_message_ids_count_1_2_3_in_each_room_and_timestamps_are_iso_utc(self):
        ann = self.join(name="ann", color="#123456")
        bob = self.join("elsewhere", worker=self.workers[1], name="bob")
        for text in ("one", "two"):
            ann.send_json("message", {"text": text})
        first, second = ann.receive_event("message"), ann.receive_event("message")
        self.assertEqual((first["id"], second["id"]), (1, 2))
        bob.send_json("message", {"text": "another room"})
        self.assertEqual(bob.receive_event("message")["id"], 1)  # its own count
        self.assertRegex(first["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

    def test_history_on_join_is_the_last_50_oldest_first(self):
        store_history("history", 60)
        client = self.connect("/chat/history/")
        history = [client.receive_event("message") for _ in range(50)]
        self.assertEqual([m["text"] for m in history], [f"m{i}" for i in range(10, 60)])
        self.assertEqual([m["id"] for m in history], list(range(11, 61)))
        self.assertEqual(client.receive_event("welcome")["last_id"], 60)

    def test_chat_say_reaches_connected_clients_and_history(self):
        listener = self.join("announce")
        result = chat_say(self.redis.url, "announce", "from the command line")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "posted message 1 to announce")  # the id clients see
        got = listener.receive_event("message")
        self.assertEqual((got["name"], got["text"]), ("server", "from the command line"))
        latecomer = self.connect("/chat/announce/")
        self.assertEqual(latecomer.receive_event("message")["text"], "from the command line")

    def test_chat_say_rejects_bad_input_with_a_clear_error(self):
        result = chat_say(self.redis.url, "Bad Room!", "text")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("room name", result.stderr)

    def test_nick_change_is_announced_and_used_for_later_messages(self):
        ann = self.join("nicks", name="ann", color="#ff0000")
        ann.send_json("nick", {"name": "Annie", "color": "#00FF00"})
        # Her join and her new name come in one diff, or in two if the window closed in between.
        while (member := list(ann.receive_event("presence_diff")["joins"].values())[0])["name"] != "Annie":
            self.assertEqual(member["name"], "ann")
        self.assertEqual(member["color"], "#00ff00")
        ann.send_json("message", {"text": "renamed"})
        got = ann.receive_event("message")
        self.assertEqual((got["name"], got["color"]), ("Annie", "#00ff00"))

    def test_joins_and_leaves_arrive_as_presence_diffs(self):
        ann = self.join("presence", name="ann", color="#ff0000")
        bob = self.join("presence", worker=self.workers[1], name="bob", color="#00ff00")
        joined = {}
        while len(joined) < 2:  # her own join and bob's, in one diff or two (one per worker)
            joined.update(ann.receive_event("presence_diff")["joins"])
        self.assertEqual(sorted(member["name"] for member in joined.values()), ["ann", "bob"])
        bob.close()
        while not (diff := ann.receive_event("presence_diff"))["leaves"]:
            pass  # a diff sent before bob left
        self.assertEqual(([member["name"] for member in diff["leaves"].values()], diff["count"]), (["bob"], 1))


class RedisConnectionCountTests(LiveWebSocketTestCase):
    use_redis = True

    def test_redis_connections_do_not_grow_with_sockets(self):
        import redis

        server = redis.Redis.from_url(self.redis.url)
        create_rooms(*(f"room{i}" for i in range(5)))
        clients = [self.connect(f"/chat/room{i % 5}/") for i in range(50)]
        for client in clients:
            client.receive_event("welcome")
        for i, client in enumerate(clients[:10]):
            client.send_json("message", {"text": f"load {i}"})
        for client in clients:
            client.receive_event("message")
        own_id = server.client_id()
        from_worker = [c for c in server.client_list() if int(c["id"]) != own_id]
        # One PubSub connection for all 50 sockets, and at most 4 pooled publish connections.
        self.assertLessEqual(len(from_worker), 1 + 4, from_worker)
        pubsub = [c for c in from_worker if int(c["sub"]) > 0]
        self.assertEqual(len(pubsub), 1, pubsub)
        self.assertEqual(int(pubsub[0]["sub"]), 5)  # one subscription per room, not per socket
        self.assertTrue(all(c["name"].startswith("realtime-") for c in from_worker), from_worker)
        print(f"\n[measured] Redis connections from one worker with 50 sockets in 5 rooms: {len(from_worker)}")


class BadInputTests(LiveWebSocketTestCase):
    """Every kind of bad input gets an `error` event and the connection keeps working."""

    def setUp(self):
        super().setUp()
        create_rooms("badinput")
        self.client = self.connect("/chat/badinput/", name="ann", color="#ff0000")
        self.client.receive_event("welcome")

    def assert_error_then_still_works(self, code, detail_part=""):
        error = self.client.receive_event("error")
        self.assertEqual(error["code"], code)
        self.assertIn(detail_part, error["detail"])
        self.client.send_json("message", {"text": "still here"})
        self.assertEqual(self.client.receive_event("message")["text"], "still here")
        return error

    def test_not_json(self):
        self.client.send("{not json")
        self.assert_error_then_still_works("invalid_json", "not valid JSON")

    def test_binary_frame(self):
        self.client.send(b"\x00\x01")
        self.assert_error_then_still_works("binary_not_supported")

    def test_not_an_envelope(self):
        for bad in ('[1, 2]', '{"data": {}}', '{"event": "message", "data": "text"}'):
            with self.subTest(bad=bad):
                self.client.send(bad)
                self.assert_error_then_still_works("invalid_envelope")

    def test_unknown_event(self):
        self.client.send_json("shout", {"text": "x"})
        self.assert_error_then_still_works("unknown_event", "'shout'")

    def test_missing_blank_and_too_long_text(self):
        for data in ({}, {"text": "   "}, {"text": "x" * 2001}):
            with self.subTest(data=str(data)[:30]):
                self.client.send_json("message", data)
                self.assert_error_then_still_works("invalid_message", "text:")
        self.client.send_json("message", {"text": "  exactly 2000  ".replace("exactly 2000", "y" * 2000)})
        self.assertEqual(len(self.client.receive_event("message")["text"]), 2000)  # stripped, then accepted

    def test_deeply_nested_json(self):
        # Far deeper than Python's recursion limit, and still within the chat route's 16 KiB.
        self.client.send('{"event": "message", "data": {"text": ' + "[" * 5000 + "]" * 5000 + "}}")
        if sys.version_info >= (3, 13):
            # Its JSON decoder nests in C, ~10,000 deep (more than 16 KiB can hold): it parses, and
            # the form refuses the text, that list as a string of 10,000 characters.
            self.assert_error_then_still_works("invalid_message", "text: Ensure this value has at most 2000")
        else:
            self.assert_error_then_still_works("invalid_json", "not valid JSON")

    def test_a_message_bigger_than_a_chat_event_is_closed_1009_before_it_is_parsed(self):
        self.client.send_json("message", {"text": "x" * 17_000})
        self.assertEqual(self.client.receive_close(), 1009)

    def test_bad_nick(self):
        for data, field in (({"name": "", "color": "#ffffff"}, "name"), ({"name": "x" * 33, "color": "#ffffff"}, "name"),
                            ({"name": "bell\x07", "color": "#ffffff"}, "name"), ({"name": "ok", "color": "red"}, "color")):
            with self.subTest(data=data):
                self.client.send_json("nick", data)
                error = self.assert_error_then_still_works("invalid_nick", f"{field}:")
                self.assertIn(field, error["fields"])

    def test_bad_since(self):
        client = self.connect("/chat/badinput/", since="yesterday")
        self.assertEqual(client.receive_event("error")["code"], "invalid_since")
        client.receive_event("welcome")

    def test_unknown_room_name_is_refused_at_the_handshake(self):
        for path in ("/chat/Upper/", "/chat/" + "x" * 65 + "/", "/chat/sp%20ace/"):
            with self.subTest(path=path):
                with self.assertRaises(Exception) as refused:
                    self.connect(path)
                self.assertIn("404", str(refused.exception))


class RoomCreationTests(LiveWebSocketTestCase):
    """Rooms are rows: anonymous clients join rooms that exist, only logged-in users open new ones."""

    def refusal(self, path, **options):
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.open_client(self.worker.url(path), **options)
        return refused.exception.status_code, refused.exception.resp_body.decode()

    def test_an_anonymous_client_gets_404_for_a_room_that_does_not_exist_and_creates_nothing(self):
        for name in ("nowhere", "spam-1", "spam-2"):
            with self.subTest(name=name):
                self.assertEqual(self.refusal(f"/chat/{name}/"),
                                 (404, f"No room named '{name}': log in to open a new room.\n"))
        self.assertFalse(Room.objects.exists())
        page = Client().get("/chat/nowhere/")  # the page says so too, instead of a socket retrying forever
        self.assertEqual(page.status_code, 404)
        self.assertFalse(Room.objects.exists())

    def test_anyone_joins_the_lobby_and_rooms_that_exist(self):
        Room.objects.create(name="kitchen")
        for path, room in (("/chat/", "lobby"), ("/chat/kitchen/", "kitchen")):
            with self.subTest(path=path):
                self.assertEqual(self.connect(path).receive_event("welcome")["room"], room)
                self.assertEqual(Client().get(path).status_code, 200)
        self.assertEqual(sorted(Room.objects.values_list("name", flat=True)), ["kitchen", "lobby"])

    def test_a_logged_in_user_opens_a_new_room_which_anyone_may_then_join(self):
        browser = Client()
        browser.force_login(User.objects.create_user("alice", password="a long enough password"))
        self.assertEqual(browser.get("/chat/planning/").status_code, 200)
        self.assertFalse(Room.objects.exists())  # showing the page writes nothing; the socket opens the room
        alice = self.open_client(self.worker.url("/chat/planning/"), cookie=f"sessionid={browser.cookies['sessionid'].value}")
        self.assertEqual(alice.receive_event("welcome")["room"], "planning")
        self.assertTrue(Room.objects.filter(name="planning", private=False).exists())
        guest = self.connect("/chat/planning/", name="guest")
        guest.receive_event("welcome")
        guest.send_json("message", {"text": "found it"})
        self.assertEqual(alice.receive_event("message")["text"], "found it")


class InProcessBrokerTests(RoomClientsMixin, LiveWebSocketTestCase):
    """Without REDIS_URL one worker still chats, and says which broker it uses."""

    def test_two_clients_chat_without_redis(self):
        self.assertIn("in-process broker", self.worker.log())
        ann, bob = self.join("local", name="ann", color="#ff0000"), self.join("local", name="bob", color="#0000ff")
        ann.send_json("message", {"text": "no redis here"})
        self.assertEqual(bob.receive_event("message")["text"], "no redis here")
