"""The server API (docs/api.md): keys, publish, notify, broadcast, presence, history, disconnect.

In this process first (Django's test client beside ChannelCommunicator sockets, the in-process
broker), then over real HTTP: the page server under gunicorn, two websocket workers and Redis, called
by a process that has no Django at all (realtime/api/client.py, urllib only).
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, RequestFactory, TestCase, override_settings
from django.urls import resolve
from django.utils import timezone

import realtime.api
from chat.models import Message, Room
from realtime.api.client import ApiClient, ApiError
from realtime.api.keys import create_key
from realtime.api.models import ApiKey
from realtime.channels.tokens import issue_token
from realtime.testing import ChannelClient, ChannelCommunicator, LiveWebSocketTestCase, WebsocketCommunicator
from tests.servers import PageServer

NO_LIMITS = {"REALTIME_API_RATE": 0}


class ApiCalls:
    def call(self, method, body, key=None, raw=None, **headers):
        """(status, answer) of POST /realtime/api/<method> with `key` (self.key by default; "" for none).
        Through the URLconf, not the test client: its request signals would close the database
        connection under the test's open sockets (realtime/testing/communicator.py holds them)."""
        return self.respond(method, body, key, raw, **headers)[:2]

    def respond(self, method, body, key=None, raw=None, **headers):
        """(status, answer, the response)."""
        key = self.key if key is None else key
        if key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        path = f"/realtime/api/{method}"
        request = RequestFactory().post(path, raw or json.dumps(body), content_type="application/json", **headers)
        response = resolve(path).func(request)
        return response.status_code, json.loads(response.content), response


class ApiTestCase(ApiCalls, TestCase):
    def setUp(self):
        self.ann = User.objects.create_user("ann")
        Room.objects.create(name="lobby")
        _, self.key = create_key("billing", ["user:*", "chat:lobby", "news", "jobs:*"], may_disconnect=True)

    def socket(self, **options):
        socket = ChannelCommunicator(**options)
        self.assertTrue(socket.connect(), f"refused: {socket.status} {socket.content}")
        self.addCleanup(socket.disconnect)
        return socket


@override_settings(**NO_LIMITS)
class KeyTests(ApiTestCase):
    def test_the_row_keeps_a_prefix_and_a_hash_never_the_secret(self):
        row = ApiKey.objects.get()
        prefix, secret = self.key.removeprefix("rtk_").split("_", 1)
        self.assertEqual(row.prefix, prefix)
        self.assertNotIn(secret, json.dumps(list(ApiKey.objects.values()), default=str))

    def test_missing_wrong_revoked_and_unadmitted_keys_are_refused_and_nothing_is_published(self):
        watcher = self.socket(user=self.ann)
        watcher.join(f"user:{self.ann.pk}")
        body = {"user": self.ann.pk, "event": "invoice_ready", "data": {"id": 1}}
        prefix, secret = self.key.removeprefix("rtk_").split("_", 1)
        _, narrow = create_key("news only", ["news"])
        cases = [("", 401, "unauthorized", "Bearer"), ("rtk_nothing", 401, "unauthorized", "not valid"),
                 (f"rtk_{prefix}_{secret[:-1]}x", 401, "unauthorized", "not valid"),
                 (narrow, 403, "forbidden", f"user:{self.ann.pk}")]
        for key, status, code, detail in cases:
            with self.subTest(key=key):
                answer = self.call("notify", body, key=key)
                self.assertEqual(answer[:1] + (answer[1]["code"],), (status, code))
                self.assertIn(detail, answer[1]["detail"])
        ApiKey.objects.filter(prefix=prefix).update(revoked=timezone.now())
        self.assertEqual(self.call("notify", body), (403, {"code": "revoked", "detail": "This key was revoked."}))
        self.assertTrue(watcher.receive_nothing())  # none of them reached the user

    def test_the_command_makes_lists_and_revokes_keys_and_prints_the_key_once(self):
        out, told = io.StringIO(), io.StringIO()
        call_command("realtime_api_key", "create", "cron", "--topic", "news", stdout=out, stderr=told)
        key = out.getvalue().strip()
        self.assertIn("not shown again", told.getvalue())
        # It authenticates (no channel serves "news": 404, not 401).
        self.assertEqual(self.call("publish", {"topic": "news", "event": "headline", "data": {}}, key=key)[0], 404)
        call_command("realtime_api_key", "list", stdout=(listing := io.StringIO()))
        self.assertIn("'cron'  news", listing.getvalue())
        self.assertNotIn(key.split("_", 2)[2], listing.getvalue())  # the secret (token_urlsafe) may hold "_" too
        call_command("realtime_api_key", "revoke", key, stdout=io.StringIO())
        self.assertEqual(self.call("publish", {"topic": "news", "event": "e", "data": {}}, key=key)[1]["code"], "revoked")

    def test_csrf_does_not_apply_and_a_logged_in_session_is_no_key(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(User.objects.create_superuser("root", password=None))
        body = json.dumps({"user": self.ann.pk, "event": "e", "data": {}})
        self.assertEqual(client.post("/realtime/api/notify", body, content_type="application/json").status_code, 401)
        self.assertEqual(client.post("/realtime/api/notify", body, content_type="application/json",
                                     HTTP_AUTHORIZATION=f"Bearer {self.key}").status_code, 200)

    def test_the_admin_shows_a_new_key_once_and_it_works(self):
        admin = User.objects.create_superuser("root", password=None)
        client = Client()
        client.force_login(admin)
        response = client.post("/admin/realtime_api/apikey/add/", {"name": "webhook", "topics": "user:*"}, follow=True)
        shown = [str(message) for message in response.context["messages"]]
        key = next(text.rsplit(" ", 1)[1] for text in shown if "shown only now" in text)
        self.assertEqual(self.call("notify", {"user": 1, "event": "e", "data": {}}, key=key), (200, {"topic": "user:1"}))


@override_settings(**NO_LIMITS)
class PublishTests(ApiTestCase):
    def test_publish_and_notify_reach_the_topic_s_sockets(self):
        tabs = [self.socket(user=self.ann) for _ in range(2)]
        for tab in tabs:
            tab.join(f"user:{self.ann.pk}")
        self.assertEqual(self.call("notify", {"user": self.ann.pk, "event": "invoice_ready", "data": {"id": 7}}),
                         (200, {"topic": f"user:{self.ann.pk}"}))
        for tab in tabs:
            self.assertEqual(tab.receive_push(f"user:{self.ann.pk}", "invoice_ready")["data"], {"id": 7})

    def test_bad_requests_say_what_is_wrong_and_publish_nothing(self):
        lobby = self.socket()
        lobby.join("chat:lobby")
        lobby.receive_push("chat:lobby", "presence")
        cases = [({"topic": "chat:lobby", "event": "Message", "data": {}}, 400, '"event"'),
                 ({"topic": "chat:lobby", "event": "close", "data": {}}, 400, "of the layer"),
                 ({"topic": "chat:lobby", "event": "message", "data": []}, 400, '"data"'),
                 ({"topic": "chat:lobby", "event": "message", "data": {"text": ""}}, 400, "text"),
                 ({"topic": "chat:lobby", "event": "typing", "data": {}}, 400, '"message"'),
                 ({"topic": "chat:kitchen", "event": "message", "data": {"text": "hi"}}, 403, "chat:kitchen"),
                 ({"topic": "news", "event": "headline", "data": {}}, 404, "No channel serves"),
                 ({"topic": "jobs:all", "event": "job", "data": {}}, 403, "fed by the server"),
                 ({"event": "headline", "data": {}}, 400, '"topic"')]
        for body, status, detail in cases:
            with self.subTest(body=body):
                answer = self.call("publish", body)
                self.assertEqual(answer[0], status, answer)
                self.assertIn(detail, answer[1]["detail"])
        self.assertEqual(self.call("publish", None, raw="[1")[1]["code"], "invalid_json")
        self.assertEqual(resolve("/realtime/api/publish").func(RequestFactory().get("/")).status_code, 405)
        self.assertTrue(lobby.receive_nothing())
        self.assertFalse(Message.objects.exists())

    @override_settings(REALTIME_API_MAX_BODY=100)
    def test_a_body_over_the_size_limit_gets_413_and_nothing_is_published(self):
        answer = self.call("publish", {"topic": "chat:lobby", "event": "message", "data": {"text": "x" * 100}})
        self.assertEqual((answer[0], answer[1]["code"]), (413, "too_large"))
        self.assertFalse(Message.objects.exists())

    def test_a_room_stores_what_is_published_and_the_same_idempotency_key_stores_and_delivers_once(self):
        lobby = self.socket()
        lobby.join("chat:lobby")
        body = {"topic": "chat:lobby", "event": "message", "data": {"text": "Deploy done", "name": "deploybot"}}
        for _ in range(2):
            with self.captureOnCommitCallbacks(execute=True):
                self.assertEqual(self.call("publish", body, HTTP_IDEMPOTENCY_KEY="deploy-812"),
                                 (200, {"topic": "chat:lobby", "offset": 1}))
        push = lobby.receive_push("chat:lobby", "message")
        self.assertEqual((push["offset"], push["data"]["name"], push["data"]["text"]), (1, "deploybot", "Deploy done"))
        self.assertTrue(lobby.receive_nothing())
        self.assertEqual(list(Message.objects.values_list("seq", "sender", "nonce")),
                         [(1, f"api:{ApiKey.objects.get().prefix}", "deploy-812")])

    def test_an_idempotency_key_on_a_topic_without_history_is_refused_not_ignored(self):
        answer = self.call("notify", {"user": self.ann.pk, "event": "e", "data": {}}, HTTP_IDEMPOTENCY_KEY="k1")
        self.assertEqual(answer[0], 400)
        self.assertIn("history only", answer[1]["detail"])

    def test_broadcast_checks_every_topic_first_and_answers_per_topic(self):
        bob = User.objects.create_user("bob")
        sockets = {user.pk: self.socket(user=user) for user in (self.ann, bob)}
        for pk, socket in sockets.items():
            socket.join(f"user:{pk}")
        refused = self.call("broadcast", {"topics": [f"user:{self.ann.pk}", "chat:kitchen"], "event": "e", "data": {}})
        self.assertEqual(refused[0], 403)
        self.assertTrue(sockets[self.ann.pk].receive_nothing())  # nothing, not the first half
        topics = [f"user:{self.ann.pk}", f"user:{bob.pk}", "chat:lobby"]
        with self.captureOnCommitCallbacks(execute=True):
            status, answer = self.call("broadcast", {"topics": topics, "event": "maintenance", "data": {"at": "06:00"}})
        self.assertEqual(status, 200)
        self.assertEqual(answer["results"][:2], [{"topic": topics[0]}, {"topic": topics[1]}])
        self.assertEqual(answer["results"][2]["error"]["code"], "invalid_event")  # a room takes messages only
        for pk, socket in sockets.items():
            self.assertEqual(socket.receive_push(f"user:{pk}", "maintenance")["data"], {"at": "06:00"})


@override_settings(**NO_LIMITS)
class ReadTests(ApiTestCase):
    def test_history_pages_backwards_from_an_offset(self):
        for i in range(1, 6):
            with self.captureOnCommitCallbacks(execute=True):
                self.call("publish", {"topic": "chat:lobby", "event": "message", "data": {"text": f"m{i}"}})
        status, page = self.call("history", {"topic": "chat:lobby", "limit": 2})
        self.assertEqual(status, 200)
        self.assertEqual([(p["offset"], p["event"], p["data"]["text"]) for p in page["publications"]],
                         [(4, "message", "m4"), (5, "message", "m5")])
        self.assertEqual(page["before"], 4)
        older = self.call("history", {"topic": "chat:lobby", "before": 4, "limit": 5})[1]
        self.assertEqual(([p["offset"] for p in older["publications"]], older["before"]), ([1, 2, 3], None))
        self.assertEqual(self.call("history", {"topic": f"user:{self.ann.pk}"})[1]["code"], "no_history")
        self.assertEqual(self.call("history", {"topic": "chat:lobby", "before": 0})[0], 400)

    def test_presence_counts_and_lists_the_room_s_members(self):
        # A room of its own: the in-process presence of this test process forgets earlier tests'
        # members only at its next flush.
        Room.objects.create(name="api-presence")
        _, key = create_key("presence", ["chat:api-presence", "user:*"])
        members = [self.socket() for _ in range(3)]
        for i, member in enumerate(members):
            member.join("chat:api-presence", params={"name": f"m{i}"})
            member.receive_push("chat:api-presence", "presence")  # listed now
        status, page = self.call("presence", {"topic": "chat:api-presence"}, key=key)
        self.assertEqual((status, page["count"]), (200, 3))
        self.assertEqual(sorted(member["name"] for member in page["members"]), ["m0", "m1", "m2"])
        self.assertEqual(self.call("presence", {"topic": f"user:{self.ann.pk}"}, key=key)[1]["code"], "no_presence")


@override_settings(**NO_LIMITS)
class DisconnectTests(ApiTestCase):
    def test_every_socket_of_the_user_closes_with_4403_and_others_stay(self):
        bob = User.objects.create_user("bob")
        ann_sockets = [self.socket(user=self.ann), self.socket(user=self.ann)]
        ann_sockets[1].join("chat:lobby")
        bob_socket = self.socket(user=bob)
        self.assertEqual(self.call("disconnect", {"user": self.ann.pk, "reason": "password changed"}), (200, {}))
        for socket in ann_sockets:
            self.assertEqual(socket.receive_close(), 4403)
            self.assertEqual(socket.close_reason, "password changed")
        self.assertEqual(bob_socket.request("realtime", "heartbeat")["status"], "ok")

    def test_the_older_one_topic_routes_close_too(self):
        socket = self.socket(user=self.ann)  # (this process's broker delivers here while it is open)
        room = WebsocketCommunicator("/chat/lobby/", user=self.ann)
        self.assertTrue(room.connect())
        self.addCleanup(room.disconnect)
        room.receive_event("welcome")
        self.call("disconnect", {"user": self.ann.pk})
        self.assertEqual((room.receive_close(), socket.receive_close()), (4403, 4403))

    def test_a_socket_that_authenticates_later_is_the_new_user_s(self):
        socket = self.socket()
        socket.call("realtime", "auth", {"token": issue_token(self.ann)[0]})
        self.call("disconnect", {"user": self.ann.pk})
        self.assertEqual(socket.receive_close(), 4403)

    def test_a_key_without_may_disconnect_or_without_the_user_s_topic_is_refused(self):
        _, plain = create_key("plain", ["user:*"])
        _, other = create_key("others", [f"user:{self.ann.pk + 1}"], may_disconnect=True)
        socket = self.socket(user=self.ann)
        for key in (plain, other):
            self.assertEqual(self.call("disconnect", {"user": self.ann.pk}, key=key)[0], 403)
        self.assertEqual(socket.request("realtime", "heartbeat")["status"], "ok")


@override_settings(REALTIME_API_RATE=1, REALTIME_API_BURST=2)
class RateTests(ApiTestCase):
    def test_over_the_key_s_rate_429_with_retry_after_nothing_published_other_keys_unaffected(self):
        _, other = create_key("other", ["user:*"])
        watcher = self.socket(user=self.ann)
        watcher.join(f"user:{self.ann.pk}")
        body = {"user": self.ann.pk, "event": "tick", "data": {}}
        self.assertEqual([self.call("notify", body)[0] for _ in range(2)], [200, 200])
        status, answer, response = self.respond("notify", body)
        self.assertEqual((status, answer["code"]), (429, "rate_limited"))
        self.assertEqual(response["Retry-After"], "1")
        self.assertEqual(self.call("notify", body, key=other)[0], 200)
        self.assertEqual(len([watcher.receive_push(event="tick") for _ in range(3)]), 3)
        self.assertTrue(watcher.receive_nothing())  # the refused one never came


# --- over real HTTP: the page server under gunicorn, two websocket workers, Redis ------------------

CLIENT_FILE = Path(realtime.api.__file__).with_name("client.py")
# What another program runs: Python with no Django and no settings, this one file beside it.
NO_DJANGO_PROGRAM = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("client", sys.argv[1])
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)
api = client.ApiClient(sys.argv[2], sys.argv[3])
user = int(sys.argv[4])
answers = [api.notify(user, "invoice_ready", {"invoice": 1234}),
           api.publish("chat:lobby", "message", {"text": "Deploy done", "name": "deploybot"}, idempotency_key="deploy-812"),
           api.publish("chat:lobby", "message", {"text": "Deploy done", "name": "deploybot"}, idempotency_key="deploy-812")]
try:
    api.notify(user, "close", {})
except client.ApiError as error:
    answers.append({"status": error.status, "code": error.code})
print(json.dumps({"answers": answers, "django": "django" in sys.modules}))
"""


class ApiLiveTests(LiveWebSocketTestCase):
    worker_count = 2
    use_redis = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The key's rate in this class: a burst of 4, then 1 in 10 s (settings from the environment).
        cls.pages = PageServer({"REDIS_URL": cls.redis.url, "REALTIME_API_RATE": "0.1", "REALTIME_API_BURST": "4"})
        cls.addClassCleanup(cls.pages.stop)
        cls.pages.start()

    def setUp(self):
        super().setUp()
        self.ann, self.bob = User.objects.create_user("ann"), User.objects.create_user("bob")
        Room.objects.create(name="lobby")
        self.url = f"http://127.0.0.1:{self.pages.port}/realtime/api/"
        self.row, key = create_key("billing", ["user:*", "chat:lobby"], may_disconnect=True)
        self.api = ApiClient(self.url, key)

    def socket(self, worker, user=None):
        client = ChannelClient(worker.url("/socket/"), token=issue_token(user)[0] if user else None)
        self.clients.append(client)
        return client

    def user_sockets(self, user):
        """A socket of `user` on each worker, joined to the user's topic."""
        sockets = [self.socket(worker, user) for worker in self.workers]
        for socket in sockets:
            socket.join(f"user:{user.pk}")
        return sockets

    def test_a_program_without_django_notifies_every_socket_of_a_user_and_posts_once_per_idempotency_key(self):
        tabs = self.user_sockets(self.ann)
        lobby = self.socket(self.workers[1])
        lobby.join("chat:lobby")
        program = subprocess.run([sys.executable, "-I", "-c", NO_DJANGO_PROGRAM, str(CLIENT_FILE), self.url,
                                  self.api.key, str(self.ann.pk)], capture_output=True, text=True, timeout=60,
                                 env={"PATH": os.environ["PATH"]})
        self.assertEqual(program.returncode, 0, program.stderr)
        result = json.loads(program.stdout)
        self.assertFalse(result["django"])
        self.assertEqual(result["answers"], [{"topic": f"user:{self.ann.pk}"}, {"topic": "chat:lobby", "offset": 1},
                                             {"topic": "chat:lobby", "offset": 1}, {"status": 400, "code": "invalid_request"}])
        for tab in tabs:  # on both workers
            self.assertEqual(tab.receive_push(f"user:{self.ann.pk}", "invoice_ready")["data"], {"invoice": 1234})
        message = lobby.receive_push("chat:lobby", "message")
        self.assertEqual((message["offset"], message["data"]["text"]), (1, "Deploy done"))
        lobby.join("clock")  # a round trip: anything published before it has arrived
        self.assertEqual([push for push in lobby.pushes if push["event"] == "message"], [])  # no second copy
        self.assertEqual(Message.objects.count(), 1)

    def test_refused_keys_publish_nothing_and_say_why(self):
        tabs = self.user_sockets(self.ann)
        prefix = self.row.prefix
        _, narrow = create_key("lobby only", ["chat:lobby"])
        revoked_row, revoked = create_key("old", ["user:*"])
        ApiKey.objects.filter(pk=revoked_row.pk).update(revoked=timezone.now())
        for key, status, code in (("", 401, "unauthorized"), (f"rtk_{prefix}_wrong", 401, "unauthorized"),
                                  (revoked, 403, "revoked"), (narrow, 403, "forbidden")):
            with self.subTest(key=key), self.assertRaises(ApiError) as refused:
                ApiClient(self.url, key).notify(self.ann.pk, "invoice_ready", {})
            self.assertEqual((refused.exception.status, refused.exception.code), (status, code))
        for tab in tabs:
            self.assertEqual(tab.request("realtime", "heartbeat")["status"], "ok")
            self.assertEqual(list(tab.pushes), [])  # nothing came before the heartbeat's reply

    def test_over_the_rate_429_and_nothing_published_while_another_key_goes_on(self):
        tabs = self.user_sockets(self.ann)
        _, other_key = create_key("other", ["user:*"])
        for i in range(4):
            self.api.notify(self.ann.pk, "tick", {"n": i})
        with self.assertRaises(ApiError) as refused:
            self.api.notify(self.ann.pk, "tick", {"n": 4})
        self.assertEqual((refused.exception.status, refused.exception.code), (429, "rate_limited"))
        self.assertGreater(refused.exception.retry_after, 0)
        ApiClient(self.url, other_key).notify(self.ann.pk, "tick", {"n": "other"})
        for tab in tabs:
            self.assertEqual([tab.receive_push(event="tick")["data"]["n"] for _ in range(5)], [0, 1, 2, 3, "other"])

    def test_disconnect_closes_the_user_s_sockets_on_both_workers_with_4403_and_no_other(self):
        tabs = self.user_sockets(self.ann) + [self.socket(self.workers[0], self.ann)]  # one joined nothing
        bob = self.socket(self.workers[1], self.bob)
        self.assertEqual(self.api.disconnect(self.ann.pk, "password changed"), {})
        for tab in tabs:
            self.assertEqual(tab.receive_close(), 4403)
            self.assertEqual(tab.close_reason, "password changed")
        self.assertEqual(bob.request("realtime", "heartbeat")["status"], "ok")

    def test_disconnect_finds_a_socket_under_the_user_it_acts_as_and_auth_never_changes_that_user(self):
        became_ann = self.socket(self.workers[0])  # anonymous, then ann's by an auth frame
        self.assertEqual(became_ann.call("realtime", "auth", {"token": issue_token(self.ann)[0]})["response"]["user"],
                         {"id": self.ann.pk, "username": "ann"})
        bob = self.socket(self.workers[0], self.bob)
        bob.join(f"user:{self.bob.pk}")
        refused = bob.request("realtime", "auth", {"token": issue_token(self.ann)[0]})
        self.assertEqual((refused["status"], refused["response"].get("code"), refused["response"].get("reason")),
                         ("error", "unauthorized", "another_user"))
        self.api.disconnect(self.ann.pk, "ann's sessions ended")
        self.assertEqual((became_ann.receive_close(), became_ann.close_reason), (4403, "ann's sessions ended"))
        self.api.disconnect(self.bob.pk, "bob's sessions ended")
        # Closed by bob's disconnect, and not before by ann's: the refused auth left it bob's.
        self.assertEqual((bob.receive_close(), bob.close_reason), (4403, "bob's sessions ended"))

    def test_presence_and_history_over_http(self):
        # A room of its own: the other tests' members leave Redis's list only at their workers' next flush.
        Room.objects.create(name="api-live")
        api = ApiClient(self.url, create_key("reader", ["chat:api-live"])[1])
        members = [self.socket(worker) for worker in self.workers]
        for i, member in enumerate(members):
            member.join("chat:api-live", params={"name": f"m{i}"})
            member.receive_push("chat:api-live", "presence")
        page = api.presence("chat:api-live")
        self.assertEqual((page["count"], sorted(member["name"] for member in page["members"])), (2, ["m0", "m1"]))
        self.assertEqual(api.publish("chat:api-live", "message", {"text": "one"})["offset"], 1)
        self.assertEqual(api.history("chat:api-live")["publications"][0]["data"]["text"], "one")
