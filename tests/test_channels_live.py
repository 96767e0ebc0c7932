"""The channel layer on real workers and a real Redis: the subprotocol on the wire, per-topic resume
after a worker is killed, a socket that joins far too much or floods across its topics, and tokens
over the wire."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import websocket as websocket_client
from django.conf import settings
from django.contrib.auth.models import User
from django.test import override_settings

from chat.models import Room
from realtime.channels.revocation import disconnect
from realtime.channels.tokens import issue_token
from realtime.testing import ChannelClient, LiveWebSocketTestCase, bearer_offer, database_url
from tests.scripts import token_scripts_hear_the_shell
from tests.test_flood import BYSTANDER_WORST_ECHO, Bystander

ADOPTER = Path(settings.BASE_DIR) / "tests" / "adopter"  # the scripts docs/adopting.md shows


class ChannelsLiveTestCase(LiveWebSocketTestCase):
    def socket(self, worker=None, token=None):
        """A realtime.v1 client of /socket/ on a worker (the first by default), closed after the test."""
        client = ChannelClient((worker or self.worker).url("/socket/"), token=token)
        self.clients.append(client)
        return client


class HandshakeTests(ChannelsLiveTestCase):
    def handshake(self, *offers):
        ws = websocket_client.create_connection(self.worker.url("/socket/"), timeout=10, subprotocols=list(offers))
        self.addCleanup(ws.close)
        return ws

    def test_the_101_answers_realtime_v1_when_offered_and_names_none_when_nothing_was(self):
        self.assertEqual(self.handshake("realtime.v1").getsubprotocol(), "realtime.v1")
        ws = self.handshake()
        self.assertIsNone(ws.getsubprotocol())
        self.assertNotIn("sec-websocket-protocol", ws.getheaders())
        ws.send('{"topic": "realtime", "event": "heartbeat", "ref": 1}')
        self.assertEqual(json.loads(ws.recv())["data"], {"status": "ok", "response": {}})  # served as realtime.v1

    def test_a_bearer_token_in_the_offer_is_never_echoed(self):
        ann = User.objects.create_user("ann")
        token, _ = issue_token(ann)
        ws = self.handshake("realtime.v1", bearer_offer(token))
        self.assertEqual(ws.getheaders()["sec-websocket-protocol"], "realtime.v1")

    def test_an_offer_of_no_version_this_server_speaks_is_refused_with_400_naming_it(self):
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.handshake("realtime.v2")
        self.assertEqual(refused.exception.status_code, 400)
        self.assertEqual(refused.exception.resp_body, b"Unsupported subprotocol: offer realtime.v1.\n")

    def test_tokens_expired_or_tampered_close_the_socket_with_4401_and_auth_refuses_them(self):
        ann = User.objects.create_user("ann")
        expired, _ = issue_token(ann, max_age=-1)
        valid, _ = issue_token(ann)
        tampered = valid[:10] + ("x" if valid[10] != "x" else "y") + valid[11:]
        for token, reason in ((expired, "expired"), (tampered, "not valid")):
            with self.subTest(reason=reason):
                client = self.socket(token=token)
                self.assertEqual(client.receive_close(), 4401)
                self.assertIn(reason, client.close_reason)
        client = self.socket()
        refused = client.request("realtime", "auth", {"token": expired})
        self.assertEqual((refused["status"], refused["response"]["code"]), ("error", "unauthorized"))
        self.assertEqual(client.request("realtime", "heartbeat")["status"], "ok")  # still open, as before


class TwoWorkersTests(ChannelsLiveTestCase):
    worker_count = 2
    use_redis = True

    def test_disconnect_from_any_process_closes_the_user_s_sockets_on_every_worker_with_4403(self):
        ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")
        token, other_token = issue_token(ann)[0], issue_token(bob)[0]
        hers = [self.socket(worker, token=token) for worker in self.workers]
        his = self.socket(self.workers[1], token=other_token)
        for socket in hers + [his]:
            socket.request("realtime", "heartbeat")
        with override_settings(REDIS_URL=self.redis.url):  # as any process with the settings would
            disconnect(ann, detail="Logged out everywhere.")
        for socket in hers:
            self.assertEqual((socket.receive_close(), socket.close_reason), (4403, "Logged out everywhere."))
        self.assertEqual(his.request("realtime", "heartbeat")["status"], "ok")

    def post(self, poster, room, count, prefix):
        return [poster.push(f"chat:{room}", "message", {"text": f"{prefix}{i}"})["id"] for i in range(count)]

    def test_after_kill_9_each_topic_gets_exactly_what_it_missed_then_each_live_message_once(self):
        Room.objects.bulk_create([Room(name="east"), Room(name="west")])
        ann = self.socket(self.workers[0])
        poster = self.socket(self.workers[1])
        for room in ("east", "west"):
            ann.join(f"chat:{room}")
            poster.join(f"chat:{room}")
        seen = {room: self.post(poster, room, 2, "seen ")[-1] for room in ("east", "west")}
        for room in ("east", "west"):
            while ann.receive_push(f"chat:{room}", "message")["offset"] != seen[room]:
                pass
        self.addCleanup(self.workers[0].start_if_stopped)
        self.workers[0].stop(signal.SIGKILL)  # no cleanup at all: her socket just dies
        missed = {"east": self.post(poster, "east", 5, "missed "), "west": self.post(poster, "west", 3, "missed ")}
        self.workers[0].start()  # the same port: she comes back to the URL she knows
        back = self.socket(self.workers[0])
        for room in ("east", "west"):
            reply = back.join(f"chat:{room}", since=seen[room])
            # Before the reply, this topic's pushes are its missed messages (the other topic's live
            # pushes, its presence, may come meanwhile).
            self.assertEqual([(p["event"], p.get("offset")) for p in back.before_reply if p["topic"] == f"chat:{room}"],
                             [("message", offset) for offset in missed[room]])
            self.assertEqual((reply["offset"], reply["recovered"]), (missed[room][-1], True))
        back.pushes.clear()  # the histories, checked above
        live = self.post(poster, "west", 1, "live ")[0]
        self.assertEqual(back.receive_push("chat:west", "message")["offset"], live)
        back.request("realtime", "heartbeat")  # everything pushed before it is in
        self.assertEqual([p for p in back.pushes if p["event"] == "message"], [])  # nothing again, nothing on east


def heartbeat(client):
    assert client.request("realtime", "heartbeat", timeout=30)["status"] == "ok"


class GreedySocketTests(ChannelsLiveTestCase):
    use_redis = True

    def test_100_joins_on_one_socket_get_50_topics_and_clear_errors_and_nobody_else_stalls(self):
        Room.objects.bulk_create(Room(name=f"r{i}") for i in range(100))
        bystander = Bystander(self.socket(), heartbeat)
        bystander.start()
        greedy = self.socket()
        for i in range(100):  # all at once, without waiting for a reply
            greedy.send(json.dumps({"topic": f"chat:r{i}", "event": "join", "ref": str(i)}))
        replies = {}
        while len(replies) < 100:
            frame = json.loads(greedy.receive(timeout=30))
            if frame["event"] == "reply":
                replies[int(frame["ref"])] = frame["data"]
        bystander.stop.set()
        bystander.join(timeout=30)
        self.assertEqual([replies[i]["status"] for i in range(50)], ["ok"] * 50)
        self.assertEqual({replies[i]["response"]["code"] for i in range(50, 100)}, {"too_many_topics"})
        self.assertGreater(len(bystander.times), 5)
        self.assertLess(max(bystander.times), BYSTANDER_WORST_ECHO,
                        f"the bystander stalled: worst heartbeat {max(bystander.times):.3f} s")
        greedy.leave("chat:r0")  # the socket is fine: it may swap a topic
        greedy.join("chat:r99")

    def test_a_frame_bigger_than_the_socket_takes_closes_1009_before_it_is_parsed(self):
        client = self.socket()
        client.send(json.dumps({"topic": "chat:lobby", "event": "message", "data": {"text": "x" * 70_000}}))
        self.assertEqual(client.receive_close(), 1009)


class OneBudgetForAllTopicsTests(ChannelsLiveTestCase):
    worker_env = {"WEBSOCKET_RATE_LIMIT": "1", "WEBSOCKET_RATE_BURST": "10"}

    def test_frames_on_many_topics_spend_the_one_budget_of_the_socket(self):
        Room.objects.bulk_create(Room(name=f"r{i}") for i in range(4))
        client = self.socket()
        for i in range(4):  # 4 of the 10 frames of the burst
            client.join(f"chat:r{i}")
        refs = [f"m{n}" for n in range(12)]  # 3 on each topic: with a budget per topic, all answered
        for n, ref in enumerate(refs):
            client.send(json.dumps({"topic": f"chat:r{n % 4}", "event": "members", "data": {"after": ""}, "ref": ref}))
        before_notice = []  # replies may come before the notice: keep them (receive_push would drop them)
        while not (before_notice and before_notice[-1].get("topic") == "realtime"
                   and before_notice[-1].get("event") == "error"):
            before_notice.append(json.loads(client.receive()))
        notice = before_notice[-1]["data"]
        self.assertEqual((notice["code"], notice["retry_after"]), ("rate_limited", 1))
        time.sleep(notice["retry_after"])  # told when: the budget takes a frame again by then
        self.assertEqual(client.request("realtime", "heartbeat")["status"], "ok")
        answered = {frame["ref"] for frame in before_notice + list(client.pushes) if frame.get("ref") in refs}
        self.assertLessEqual(len(answered), 7, answered)  # what was left of the burst (6), and a second's worth
        self.assertGreater(len(answered), 0)


class TokenScriptTests(ChannelsLiveTestCase):
    """The scripts of docs/adopting.md (tests/adopter/), each in a process of its own without Django,
    listen to ann's topic with a token from `manage.py realtime_token`; `manage.py shell` notifies her."""

    use_redis = True

    def manage(self, *args):
        env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": self.redis.url}
        result = subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_a_sync_and_an_asyncio_script_with_a_token_hear_a_notify_sent_from_the_shell(self):
        ann = User.objects.create_user("ann")
        token = self.manage("realtime_token", "ann").strip()
        scripts = token_scripts_hear_the_shell(self, sys.executable, ADOPTER, self.worker.url("/socket/"), token,
                                               f"user:{ann.pk}", self.manage)
        self.assertEqual(json.loads(scripts[1].lines[0][len("auth "):])["data"]["response"],
                         {"user": {"id": ann.pk, "username": "ann"}})
