"""The channel layer in this process (no server): the wire format, topic routing, authorization of
every topic, errors that leave the socket usable, tokens, and the chat, jobs and clock as channels,
driven through `ChannelCommunicator` as a client of `/socket/` sees them."""

import json
import time
from unittest import mock

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.contrib.auth import logout
from django.test import Client, RequestFactory, SimpleTestCase, TestCase, override_settings

from chat.directory import busiest_public_rooms
from chat.mentions import MENTION_LIMIT, mentioned_names
from chat.models import Message, Room
from jobs.models import Job
from jobs.services import report
from realtime import notify
from realtime.channels import History
from realtime.channels.frames import InvalidFrame, parse_frame
from realtime.channels.revocation import disconnect
from realtime.channels.routing import UnknownTopic, get_router
from realtime.channels.sockets import MAX_SESSIONS
from realtime.channels.tokens import InvalidToken, issue_token, read_token
from realtime.fanout.brokers.in_process import InProcessBroker
from realtime.fanout.hub import Hub, text_frame
from realtime.testing import ChannelCommunicator, ErrorReply, WebsocketCommunicator
from tests.test_units import member, received


def push_frame(text):
    return text_frame(text.encode())


class WireFormatTests(SimpleTestCase):
    def test_a_frame_is_an_object_with_topic_event_data_and_an_optional_ref(self):
        frame = parse_frame('{"topic": "chat:lobby", "event": "message", "data": {"text": "hi"}, "ref": "7"}')
        self.assertEqual(frame, ("chat:lobby", "message", {"text": "hi"}, "7"))
        self.assertEqual(parse_frame('{"topic": "t", "event": "e", "ref": 12}').data, {})  # data defaults to {}

    def test_what_is_wrong_with_a_frame_is_said_with_what_could_be_read_of_it(self):
        cases = [(b"\x00", "binary", None), ("{nope", "not valid JSON", None), ("[1]", "JSON object", None),
                 ('{"topic": "t", "event": "e", "ref": true}', '"ref"', None),
                 ('{"topic": "t", "event": "e", "ref": "' + "r" * 65 + '"}', '"ref"', None),
                 ('{"event": "e", "ref": "1"}', '"topic"', "1"), ('{"topic": 5, "event": "e"}', '"topic"', None),
                 ('{"topic": "user:1\\n2", "event": "join"}', '"topic"', None),
                 ('{"topic": "t", "ref": 2}', '"event"', 2), ('{"topic": "t", "event": "e", "data": [], "ref": 3}',
                                                              '"data"', 3)]
        for message, detail, ref in cases:
            with self.subTest(message=message), self.assertRaises(InvalidFrame) as invalid:
                parse_frame(message)
            self.assertIn(detail, invalid.exception.detail)
            self.assertEqual((invalid.exception.code, invalid.exception.ref), ("invalid_frame", ref))

    def test_topics_route_like_paths_and_the_personal_topic_is_the_layer_s_own(self):
        router = get_router()
        self.assertEqual(router.resolve("chat:lobby")[1], {"room": "lobby"})
        self.assertEqual(router.resolve("user:42")[1], {"user_id": "42"})
        self.assertEqual(router.resolve("jobs:user:7")[1], {"user_id": 7})
        for name in ("chat:Upper", "chat:", "user:", "jobs:user:x", "nowhere", "clock:extra"):
            with self.subTest(name=name), self.assertRaises(UnknownTopic):
                router.resolve(name)


class HubFramingTests(SimpleTestCase):
    def test_a_publication_is_framed_once_per_topic_for_its_members_and_as_published_for_one_topic_sockets(self):
        broker = InProcessBroker()
        hub = Hub(broker)
        broker.start(hub.dispatch, hub.resync_all)
        on_socket, also_on_socket, one_topic = member(), member(), member()
        for connection in (on_socket, also_on_socket):
            hub.subscribe("chat:lobby", connection, topic="chat:lobby")
        hub.subscribe("chat:lobby", one_topic)
        with mock.patch("realtime.fanout.hub.text_frame", side_effect=text_frame) as framed:
            broker.publish("chat:lobby", '{"event":"message","data":{"text":"hi"}}')
        self.assertEqual(framed.call_count, 2)  # one per topic group, not one per member
        expected = push_frame('{"topic":"chat:lobby","event":"message","data":{"text":"hi"}}')
        self.assertEqual((received(on_socket), received(also_on_socket)), (expected, expected))
        self.assertEqual(received(one_topic), push_frame('{"event":"message","data":{"text":"hi"}}'))

    def test_history_is_framed_once_per_topic_with_its_offsets(self):
        history = History.of([(4, '{"event":"message","data":{"id":4}}'), (5, '{"event":"message","data":{"id":5}}')])
        on_topic = history.frames_for(b'{"topic":"chat:a",')
        self.assertIs(history.frames_for(b'{"topic":"chat:a",'), on_topic)  # made once, shared by joiners
        self.assertEqual(on_topic, (push_frame('{"topic":"chat:a","offset":4,"event":"message","data":{"id":4}}'),
                                    push_frame('{"topic":"chat:a","offset":5,"event":"message","data":{"id":5}}')))
        self.assertEqual(history.frames_for(None), history.frames)


class ChannelTestCase(TestCase):
    def setUp(self):
        self.ann = User.objects.create_user("ann")  # no password: hashing one takes 0.3 s
        self.bob = User.objects.create_user("bob")
        Room.objects.create(name="lobby")

    def socket(self, **options):
        socket = ChannelCommunicator(**options)
        self.assertTrue(socket.connect(), f"refused: {socket.status} {socket.content}")
        self.addCleanup(socket.disconnect)
        return socket

    def assert_refused(self, code, call, *args, **kwargs):
        with self.assertRaises(ErrorReply) as refused:
            call(*args, **kwargs)
        self.assertEqual(refused.exception.code, code, refused.exception.detail)
        return refused.exception


class AuthorizationTests(ChannelTestCase):
    def test_only_its_user_joins_a_personal_topic_and_a_refused_join_leaves_the_socket_usable(self):
        anonymous, ann = self.socket(), self.socket(user=self.ann)
        self.assert_refused("forbidden", anonymous.join, f"user:{self.ann.pk}")
        refusal = self.assert_refused("forbidden", ann.join, f"user:{self.bob.pk}")
        self.assertIn(f"user:{self.ann.pk}", refusal.detail)  # it says which topic is hers
        self.assertEqual(ann.join(f"user:{self.ann.pk}")["response"], {})
        for socket in (anonymous, ann):
            self.assertEqual(socket.request("realtime", "heartbeat"), {"status": "ok", "response": {}})
            self.assertEqual(socket.join("chat:lobby")["status"], "ok")

    def test_a_private_room_needs_a_login_and_a_room_that_does_not_exist_is_opened_by_users_only(self):
        Room.objects.create(name="staff", private=True)
        anonymous, ann = self.socket(), self.socket(user=self.ann)
        self.assert_refused("forbidden", anonymous.join, "chat:staff")
        self.assertEqual(ann.join("chat:staff")["response"]["name"], "ann")
        self.assert_refused("not_found", anonymous.join, "chat:nowhere")
        self.assertFalse(Room.objects.filter(name="nowhere").exists())
        self.assertEqual(ann.join("chat:planning")["response"]["room"], "planning")
        self.assertTrue(Room.objects.filter(name="planning").exists())

    def test_jobs_are_watched_by_their_owner_and_staff(self):
        staff = User.objects.create_user("boss", is_staff=True)
        ann, someone, boss = self.socket(user=self.ann), self.socket(user=self.bob), self.socket(user=staff)
        self.assertEqual(ann.join(f"jobs:user:{self.ann.pk}")["response"], {"jobs": []})
        self.assert_refused("forbidden", someone.join, f"jobs:user:{self.ann.pk}")
        self.assert_refused("forbidden", someone.join, "jobs:all")
        boss.join(f"jobs:user:{self.ann.pk}")
        boss.join("jobs:all")
        job = Job.objects.create(owner=self.ann)
        with self.captureOnCommitCallbacks(execute=True):
            report(job, progress=50)
        for socket, topic in ((ann, f"jobs:user:{self.ann.pk}"), (boss, f"jobs:user:{self.ann.pk}"), (boss, "jobs:all")):
            self.assertEqual(socket.receive_push(topic, "job")["data"]["progress"], 50)
        self.assertTrue(someone.receive_nothing())

    def test_unknown_topics_repeats_and_events_of_topics_not_joined_are_errors_the_socket_survives(self):
        socket = self.socket()
        self.assert_refused("unknown_topic", socket.join, "nowhere")
        socket.join("clock")
        self.assert_refused("already_joined", socket.join, "clock")
        self.assert_refused("not_joined", socket.push, "chat:lobby", "message", {"text": "hi"})
        self.assert_refused("not_joined", socket.leave, "chat:lobby")
        self.assert_refused("unknown_event", socket.push, "clock", "shout")
        self.assert_refused("unknown_event", socket.call, "realtime", "shout")
        self.assert_refused("invalid_since", socket.join, "chat:lobby", since=-1)
        self.assert_refused("invalid_since", socket.call, "chat:lobby", "join", {"since": "yesterday"})
        self.assert_refused("invalid_frame", socket.call, "chat:lobby", "join", {"params": "name=ann"})
        self.assertEqual(socket.join("chat:lobby")["status"], "ok")

    @override_settings(WEBSOCKET_MAX_TOPICS=3)
    def test_a_socket_joins_at_most_the_topic_cap_and_leaving_makes_room(self):
        Room.objects.bulk_create(Room(name=f"r{i}") for i in range(4))
        socket = self.socket()
        for i in range(3):
            socket.join(f"chat:r{i}")
        refusal = self.assert_refused("too_many_topics", socket.join, "chat:r3")
        self.assertIn("At most 3 topics", refusal.detail)
        socket.leave("chat:r0")
        socket.join("chat:r3")

    def test_a_left_topic_pushes_nothing_more(self):
        socket, poster = self.socket(), self.socket()
        socket.join("chat:lobby")
        poster.join("chat:lobby")
        socket.leave("chat:lobby")
        with self.captureOnCommitCallbacks(execute=True):
            poster.push("chat:lobby", "message", {"text": "after she left"})
        self.assertEqual(poster.receive_push("chat:lobby", "message")["data"]["text"], "after she left")
        socket.request("realtime", "heartbeat")  # anything pushed before is in now
        self.assertEqual([p for p in socket.pushes if p["event"] == "message"], [])

    def test_bad_frames_get_an_error_push_and_a_frame_without_ref_gets_its_error_as_a_push(self):
        socket = self.socket()
        for message in ("{nope", b"\x01", '{"topic": "chat:lobby"}', '{"topic": "t", "event": "e", "ref": [1]}'):
            with self.subTest(message=message):
                socket.send(message)
                error = socket.receive_push("realtime", "error")["data"]
                self.assertEqual(error["code"], "invalid_frame")
        socket.send(json.dumps({"topic": "nowhere", "event": "join"}))
        self.assertEqual(socket.receive_push("realtime", "error")["data"],
                         {"code": "unknown_topic", "detail": "No channel serves 'nowhere'.", "topic": "nowhere",
                          "event": "join"})
        socket.send('{"topic": "x", "ref": "9"}')  # what could be read of it comes back: the client's ref
        self.assertEqual(socket.receive_push("realtime", "error")["data"]["ref"], "9")
        self.assertEqual(socket.join("clock")["status"], "ok")

    def test_an_exception_in_a_handler_is_an_internal_error_and_the_socket_and_topic_stay(self):
        socket = self.socket()
        socket.join("chat:lobby")
        with mock.patch("chat.channels.post_message", side_effect=RuntimeError("boom")), \
                self.assertLogs("realtime.channels", "ERROR"):
            self.assert_refused("internal_error", socket.push, "chat:lobby", "message", {"text": "hi"})
        self.assertEqual(socket.push("chat:lobby", "message", {"text": "hi"}), {"id": 1})


class SubprotocolTests(ChannelTestCase):
    def test_an_offer_without_a_version_this_server_speaks_is_refused_with_400_naming_it(self):
        for offer in ("realtime.v2", "chat, superchat"):
            with self.subTest(offer=offer):
                socket = WebsocketCommunicator("/socket/", headers={"Sec-WebSocket-Protocol": offer})
                self.addCleanup(socket.disconnect)
                self.assertFalse(socket.connect())
                self.assertEqual((socket.status, socket.content), (400, b"Unsupported subprotocol: offer realtime.v1.\n"))

    def test_no_offer_is_served_as_realtime_v1(self):
        with WebsocketCommunicator("/socket/") as socket:
            socket.send('{"topic": "realtime", "event": "heartbeat", "ref": 1}')
            self.assertEqual(json.loads(socket.receive())["data"], {"status": "ok", "response": {}})


class TokenTests(ChannelTestCase):
    def test_a_token_in_the_offer_makes_the_socket_its_user_s(self):
        token, _ = issue_token(self.ann)
        socket = self.socket(token=token)
        self.assertEqual(socket.join(f"user:{self.ann.pk}")["status"], "ok")

    def test_an_invalid_expired_or_tampered_token_in_the_offer_closes_the_socket_with_4401(self):
        expired, _ = issue_token(self.ann, max_age=-1)
        good, _ = issue_token(self.ann)
        for token, reason in ((expired, "expired"), (good[:-2] + ("AA" if good[-2:] != "AA" else "BB"), "not valid"),
                              ("no-token-at-all", "not valid")):
            with self.subTest(reason=reason):
                socket = self.socket(token=token)
                self.assertEqual(socket.receive_close(), 4401)
                self.assertIn(reason, socket.close_reason)

    def test_auth_after_open_changes_who_joins_and_a_bad_token_leaves_the_socket_as_it_was(self):
        socket = self.socket()
        refused = self.assert_refused("unauthorized", socket.call, "realtime", "auth", {"token": "forged"})
        self.assertEqual(refused.response["reason"], "invalid")
        self.assert_refused("forbidden", socket.join, f"user:{self.ann.pk}")  # still anonymous
        token, _ = issue_token(self.ann)
        self.assertEqual(socket.call("realtime", "auth", {"token": token})["response"],
                         {"user": {"id": self.ann.pk, "username": "ann"}})
        socket.join(f"user:{self.ann.pk}")

    def test_a_token_limited_to_topics_joins_those_only(self):
        token, _ = issue_token(self.ann, topics=[f"user:{self.ann.pk}", "chat:team-*"])
        socket = self.socket(token=token)
        socket.join(f"user:{self.ann.pk}")
        socket.join("chat:team-a")
        self.assertIn("does not admit", self.assert_refused("forbidden", socket.join, "chat:lobby").detail)

    def test_expired_tampered_and_foreign_tokens_are_refused_with_the_reason(self):
        token, _ = issue_token(self.ann, max_age=-1)
        self.assertEqual(self.reason(token), "expired")
        token, _ = issue_token(self.ann)
        payload = signing.loads(token, salt="realtime.channels.token")
        self.assertEqual(self.reason(signing.dumps({**payload, "u": str(self.bob.pk)}, salt="another purpose")), "invalid")
        self.assertEqual(self.reason(signing.dumps({**payload, "u": str(self.bob.pk)}, salt="realtime.channels.token",
                                                   key="not our secret")), "invalid")
        self.assertEqual(read_token(token).user, self.ann)

    def test_a_command_token_dies_with_a_password_change(self):
        token, _ = issue_token(self.ann)
        self.ann.set_password("a brand new long password")
        self.ann.save()
        self.assertEqual(self.reason(token), "revoked")

    def test_a_token_from_a_session_dies_when_that_session_logs_out_and_never_carries_its_key(self):
        browser = Client()
        browser.force_login(self.ann)
        answer = browser.post("/realtime/token/", {"topics": f"user:{self.ann.pk}"}).json()
        self.assertEqual(answer["user"], {"id": self.ann.pk, "username": "ann"})
        session_key = browser.session.session_key
        self.assertNotIn(session_key, json.dumps(signing.loads(answer["token"], salt="realtime.channels.token")))
        self.assertEqual(read_token(answer["token"]).topics, [f"user:{self.ann.pk}"])
        other = Client()
        other.force_login(self.ann)  # another session of hers: its logout changes nothing for this token
        other.post("/accounts/logout/")
        self.assertEqual(read_token(answer["token"]).user, self.ann)
        browser.post("/accounts/logout/")
        self.assertEqual(self.reason(answer["token"]), "revoked")

    def test_only_a_logged_in_user_gets_a_token_and_only_by_post(self):
        self.assertEqual(Client().post("/realtime/token/").status_code, 403)
        browser = Client()
        browser.force_login(self.ann)
        self.assertEqual(browser.get("/realtime/token/").status_code, 405)
        csrf_checked = Client(enforce_csrf_checks=True)
        csrf_checked.force_login(self.ann)
        self.assertEqual(csrf_checked.post("/realtime/token/").status_code, 403)

    def reason(self, token):
        with self.assertRaises(InvalidToken) as refused:
            read_token(token)
        return refused.exception.reason


class ChatChannelTests(ChannelTestCase):
    def test_a_message_is_answered_with_its_id_and_its_broadcast_carries_no_nonce(self):
        ann, bob = self.socket(user=self.ann), self.socket()
        ann.join("chat:lobby", {"client": "tab-1"})
        bob.join("chat:lobby")
        with self.captureOnCommitCallbacks(execute=True):  # published once committed
            self.assertEqual(ann.push("chat:lobby", "message", {"text": "hi", "nonce": "n-1"}), {"id": 1})
        # Her reply came before her copy (which this process's broker delivered during the post).
        self.assertEqual([p for p in ann.before_reply if p["event"] == "message"], [])
        self.assertEqual(ann.receive_push("chat:lobby", "message")["data"]["id"], 1)
        self.assertEqual(ann.push("chat:lobby", "message", {"text": "hi", "nonce": "n-1"}), {"id": 1})  # a resend
        seen = bob.receive_push("chat:lobby", "message")
        self.assertEqual((seen["offset"], seen["data"]["text"]), (1, "hi"))
        self.assertNotIn("nonce", seen["data"])
        self.assertEqual(Message.objects.count(), 1)
        refused = self.assert_refused("invalid_message", ann.push, "chat:lobby", "message", {"text": " ", "nonce": "n-2"})
        self.assertIn("text:", refused.detail)

    def test_history_comes_before_the_join_s_reply_with_offsets_and_a_resume_point(self):
        poster = self.socket()
        poster.join("chat:lobby")
        for i in range(3):
            poster.push("chat:lobby", "message", {"text": f"m{i}"})
        joiner = self.socket()
        reply = joiner.join("chat:lobby", since=1)
        self.assertEqual([(p["offset"], p["data"]["text"]) for p in joiner.before_reply], [(2, "m1"), (3, "m2")])
        self.assertEqual((reply["offset"], reply["recovered"]), (3, True))
        fresh = self.socket().join("chat:lobby")
        self.assertEqual((fresh["offset"], fresh["recovered"], "reason" in fresh), (3, False, False))
        unknown = self.socket().join("chat:lobby", since=99)
        self.assertEqual((unknown["recovered"], unknown["reason"]), (False, "unknown_since"))

    def test_nick_and_members_are_answered_in_the_reply(self):
        ann = self.socket()
        ann.join("chat:lobby", {"name": "ann"})
        self.assertEqual(ann.push("chat:lobby", "nick", {"name": "Annie", "color": "#00aa00"}), {})
        while list(ann.receive_push("chat:lobby", "presence_diff")["data"]["joins"].values())[0]["name"] != "Annie":
            pass  # her join, announced before her new name
        page = ann.push("chat:lobby", "members", {"after": ""})
        self.assertEqual([m["name"] for m in page["members"]], ["Annie"])
        self.assertEqual((page["count"], page["next"]), (1, None))
        self.assert_refused("invalid_nick", ann.push, "chat:lobby", "nick", {"name": "", "color": "#000000"})
        self.assert_refused("invalid_nick", self.socket().join, "chat:lobby", {"name": "x" * 40})

    def test_a_mention_notifies_each_account_named_once_and_nobody_else(self):
        cat = User.objects.create_user("cat")
        ann, bob, cat_socket = self.socket(user=self.ann), self.socket(user=self.bob), self.socket(user=cat)
        for socket, user in ((ann, self.ann), (bob, self.bob), (cat_socket, cat)):
            socket.join(f"user:{user.pk}")
        ann.join("chat:lobby")
        stored = ann.push("chat:lobby", "message", {"text": "@bob and @bob, @nobody, @ann: see this."})
        mention = bob.receive_push(f"user:{self.bob.pk}", "mention")["data"]
        self.assertEqual(mention, {"room": "lobby", "id": stored["id"], "from": "ann",
                                   "text": "@bob and @bob, @nobody, @ann: see this."})
        bob.request("realtime", "heartbeat")
        ann.request("realtime", "heartbeat")
        self.assertEqual([p for p in bob.pushes if p["event"] == "mention"], [])  # once, not twice
        self.assertEqual([p for p in ann.pushes if p["event"] == "mention"], [])  # not her own
        self.assertTrue(cat_socket.receive_nothing())

    def test_a_resend_after_a_reconnect_notifies_the_mentioned_user_once(self):
        bob = self.socket(user=self.bob)
        bob.join(f"user:{self.bob.pk}")
        message = {"text": "@bob, the build is green", "nonce": "n-1"}
        before = self.socket(user=self.ann)
        before.join("chat:lobby")
        stored = before.push("chat:lobby", "message", message)
        after = self.socket(user=self.ann)  # her page reconnected and resends what it saw no ack for
        after.join("chat:lobby")
        self.assertEqual(after.push("chat:lobby", "message", message), stored)  # the same message, stored once
        self.assertEqual(bob.receive_push(f"user:{self.bob.pk}", "mention")["data"]["id"], stored["id"])
        bob.request("realtime", "heartbeat")  # any second mention was pushed before this reply
        self.assertEqual([p for p in bob.pushes if p["event"] == "mention"], [])  # bob sees it once

    def test_mentions_are_bounded_per_message(self):
        self.assertEqual(mentioned_names("@a @b @a @c @d @e"), ["a", "b", "c"][:MENTION_LIMIT])
        self.assertEqual(mentioned_names("mail ann@example.com, @ann. (@bob)"), ["ann", "bob"])


class NotifyTests(ChannelTestCase):
    def test_notify_reaches_every_socket_of_the_user_that_joined_its_topic(self):
        tabs = [self.socket(user=self.ann) for _ in range(2)]
        bob = self.socket(user=self.bob)
        for socket in tabs:
            socket.join(f"user:{self.ann.pk}")
        bob.join(f"user:{self.bob.pk}")
        notify(self.ann, "reply", {"post": 7})
        for socket in tabs:
            self.assertEqual(socket.receive_push(f"user:{self.ann.pk}", "reply")["data"], {"post": 7})
        self.assertTrue(bob.receive_nothing())


class OtherTopicsTests(ChannelTestCase):
    @override_settings(CLOCK_INTERVAL=0.1)
    def test_the_clock_pushes_ticks(self):
        socket = self.socket()
        socket.join("clock")
        tick = socket.receive_push("clock", "time")["data"]
        self.assertEqual(set(tick), {"tick", "utc", "interval"})

    def test_the_room_directory_lists_rooms_with_members_most_first(self):
        Room.objects.create(name="kitchen")
        for room, count in (("kitchen", 2), ("lobby", 1)):
            for _ in range(count):
                self.socket().join(f"chat:{room}")
        watcher = self.socket()
        watcher.join("rooms")
        deadline = time.monotonic() + 10
        while (rooms := watcher.receive_push("rooms", "rooms")["data"]["rooms"]) != [
                {"name": "kitchen", "count": 2}, {"name": "lobby", "count": 1}]:
            self.assertLess(time.monotonic(), deadline, rooms)

    def test_the_room_directory_reads_the_busiest_rooms_from_its_index_without_sorting_the_table(self):
        plan = busiest_public_rooms().explain()  # SQLite here; PostgreSQL: tests/test_postgres.py
        self.assertIn("USING INDEX chat_room_public_last_seq", plan)
        self.assertNotIn("TEMP B-TREE", plan)  # SQLite's sort of what it scanned


class DisconnectTests(ChannelTestCase):
    def test_disconnect_closes_every_socket_of_the_user_with_4403_and_nobody_else_s(self):
        token, _ = issue_token(self.ann)
        ann_cookie, ann_token, bob = self.socket(user=self.ann), self.socket(token=token), self.socket(user=self.bob)
        anonymous = self.socket()
        legacy = WebsocketCommunicator("/chat/", user=self.ann)  # the one-topic routes too
        self.assertTrue(legacy.connect())
        self.addCleanup(legacy.disconnect)
        legacy.receive_event("welcome")
        for socket in (ann_cookie, ann_token, bob, anonymous):
            socket.request("realtime", "heartbeat")  # each is open and enrolled
        disconnect(self.ann, detail="Banned.")
        for socket in (ann_cookie, ann_token, legacy):
            self.assertEqual(socket.receive_close(), 4403)
            self.assertEqual(socket.close_reason, "Banned.")
        for socket in (bob, anonymous):
            self.assertEqual(socket.request("realtime", "heartbeat")["status"], "ok")

    def test_a_logout_closes_that_session_s_sockets_and_those_of_its_tokens_only(self):
        browser, other_browser = Client(), Client()
        browser.force_login(self.ann)
        other_browser.force_login(self.ann)
        token = browser.post("/realtime/token/").json()["token"]
        cookie = f"{settings.SESSION_COOKIE_NAME}={browser.session.session_key}"
        same_session = self.socket(headers={"Cookie": cookie})
        its_token, other_session = self.socket(token=token), self.socket(user=self.ann)
        for socket in (same_session, its_token, other_session):
            socket.join(f"user:{self.ann.pk}")
        # Django's logout, as the logout view calls it (the test client's own requests would reconnect
        # the signal that closes the test's database connection while the sockets' views still run).
        request = RequestFactory().post("/accounts/logout/")
        request.session, request.user = browser.session, self.ann
        logout(request)
        for socket in (same_session, its_token):
            self.assertEqual(socket.receive_close(), 4403)
        self.assertEqual(other_session.request("realtime", "heartbeat")["status"], "ok")

    def test_auth_never_makes_a_user_s_socket_another_user_s_so_the_first_user_s_disconnect_still_ends_it(self):
        ann = self.socket(user=self.ann)
        ann.join(f"user:{self.ann.pk}")  # hers: it must not outlive her sessions under bob's name
        refused = self.assert_refused("unauthorized", ann.call, "realtime", "auth", {"token": issue_token(self.bob)[0]})
        self.assertEqual(refused.response["reason"], "another_user")
        joined_as_ann = self.assert_refused("forbidden", ann.join, f"user:{self.bob.pk}")  # still hers
        self.assertIn(f"user:{self.ann.pk}", joined_as_ann.detail)
        disconnect(self.bob, detail="Bob is banned.")
        disconnect(self.ann, detail="Ann is banned.")
        self.assertEqual((ann.receive_close(), ann.close_reason), (4403, "Ann is banned."))  # not bob's

    def test_after_a_token_refresh_a_logout_of_the_session_it_first_authenticated_by_still_ends_it(self):
        browser = Client()
        browser.force_login(self.ann)
        from_session = browser.post("/realtime/token/").json()["token"]
        socket = self.socket(token=from_session)
        socket.join(f"user:{self.ann.pk}")  # joined on that session's word
        refreshed = socket.call("realtime", "auth", {"token": issue_token(self.ann)[0]})  # a command's token
        self.assertEqual(refreshed["response"]["user"], {"id": self.ann.pk, "username": "ann"})
        request = RequestFactory().post("/accounts/logout/")  # as the test above: Django's logout
        request.session, request.user = browser.session, self.ann
        logout(request)
        self.assertEqual(socket.receive_close(), 4403)

    def test_a_socket_keeps_a_bounded_number_of_sessions_and_a_known_one_may_always_refresh_it(self):
        tokens = []
        for _ in range(MAX_SESSIONS + 1):
            browser = Client()
            browser.force_login(self.ann)  # a session each
            tokens.append(browser.post("/realtime/token/").json()["token"])
        socket = self.socket()
        for token in tokens[:MAX_SESSIONS]:
            self.assertEqual(socket.call("realtime", "auth", {"token": token})["response"]["user"]["id"], self.ann.pk)
        refused = self.assert_refused("unauthorized", socket.call, "realtime", "auth", {"token": tokens[-1]})
        self.assertEqual(refused.response["reason"], "too_many_sessions")
        self.assertEqual(socket.call("realtime", "auth", {"token": tokens[0]})["status"], "ok")
