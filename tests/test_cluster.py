"""REDIS_URL=redis+cluster://...: sharded PubSub across three shards, and a shard's failover.

Three primaries with a replica each (tests/redis_topologies.py), started once for the class.
"""

import json
import signal
import time

from realtime.testing import wait_until
from tests.history import RoomClientsMixin, create_rooms
from tests.redis_topologies import ClusterTopology, TopologyTestCase, ask

HEALTH_INTERVAL = 2.0  # REDIS_HEALTH_CHECK_INTERVAL of the workers (5 s by default)


def client_list(port):
    """CLIENT LIST of one node: one dict per connection."""
    return [dict(field.split("=", 1) for field in line.split() if "=" in field)
            for line in (ask(port, "client", "list") or "").splitlines()]


class ClusterTests(RoomClientsMixin, TopologyTestCase):
    topology_class = ClusterTopology
    worker_count = 2
    worker_env = {"REDIS_HEALTH_CHECK_INTERVAL": str(HEALTH_INTERVAL)}

    def rooms_on_each_shard(self, prefix):
        """{primary port: a room name whose channel that primary owns}, one per shard."""
        rooms = {}
        for i in range(200):
            name = f"{prefix}{i}"
            rooms.setdefault(self.topology.owner(f"{{chat:{name}}}"), name)
            if len(rooms) == 3:
                return rooms
        self.fail("no three rooms on three shards")

    def health(self, worker):
        answer = worker.http_get("/healthz")
        return (answer[0], json.loads(answer[2])) if answer else (None, {})

    def test_1_rooms_on_three_shards_chat_across_two_workers_on_one_pubsub_connection_per_shard(self):
        rooms = self.rooms_on_each_shard("shard")
        create_rooms(*rooms.values())
        for port, room in rooms.items():
            ann = self.join(room, self.workers[0], name="ann")
            bob = self.join(room, self.workers[1], name="bob")
            ann.send_json("message", {"text": f"hi from ann in {room}"})
            self.assertEqual(bob.receive_event("message")["text"], f"hi from ann in {room}")
            bob.send_json("message", {"text": f"hi from bob in {room}"})
            self.assertEqual(self.texts_until(ann, f"hi from bob in {room}"),
                             [f"hi from ann in {room}", f"hi from bob in {room}"])
            # Presence's scripts ran on the room's shard and published their diff there: ann sees bob.
            while "bob" not in json.dumps(ann.receive_event("presence_diff")["joins"]):
                pass
        for worker in self.workers:
            status, health = self.health(worker)
            self.assertEqual((status, health["broker"]), (200, "redis-cluster"))
            self.assertEqual(sorted(health["broker_shards"]), sorted(f"127.0.0.1:{port}" for port in rooms))
        # Each shard: one sharded-PubSub connection per worker process (two), whatever the sockets.
        for port in rooms:
            listeners = [c for c in client_list(port) if int(c.get("ssub", 0)) > 0]
            self.assertEqual(len(listeners), 2, listeners)
            self.assertTrue(all(c["name"].startswith("realtime-") and c["name"].endswith("-sub") for c in listeners))
            self.assertEqual({c["ssub"] for c in listeners}, {"1"})  # the one room this shard owns

    def lose_a_primary_and_chat_on(self, prefix, lose):
        """Two workers chat in a room whose shard's primary `lose(port)` takes away, and in a room
        on another shard: both workers say degraded, the other room chats on live, the replica takes
        over, and the room chats again with nothing lost. (room, elsewhere, seconds until both
        workers said degraded)."""
        rooms = self.rooms_on_each_shard(prefix)
        create_rooms(*rooms.values())
        lost_port, room = next((port, room) for port, room in rooms.items() if self.topology.replica_of(port))
        elsewhere = next(other for port, other in rooms.items() if port != lost_port)
        replica_port = self.topology.replica_of(lost_port)
        ann = self.join(room, self.workers[0], name="ann")
        bob = self.join(room, self.workers[1], name="bob")
        dan = self.join(elsewhere, self.workers[0], name="dan")
        eve = self.join(elsewhere, self.workers[1], name="eve")
        ann.send_json("message", {"text": "before"})
        last_before = bob.receive_event("message")

        started = time.monotonic()
        lose(lost_port)
        for worker in self.workers:
            wait_until(lambda: self.health(worker)[0] == 503, timeout=HEALTH_INTERVAL + 2, message="healthz to say degraded")
        degraded_after = time.monotonic() - started
        ann.send_json("message", {"text": "during"})  # stored; live delivery may fail (its sender is told)
        # Meanwhile a room on another shard chats on, live.
        dan.send_json("message", {"text": "elsewhere, during"})
        self.assertEqual(eve.receive_event("message")["text"], "elsewhere, during")
        for worker in self.workers:
            wait_until(lambda: self.health(worker)[0] == 200, timeout=30, message="the worker to find the new primary")
        self.assertEqual(self.topology.owner(f"{{chat:{room}}}"), replica_port)  # promoted
        ann.send_json("message", {"text": "after, from ann"})
        self.assertEqual(self.texts_until(bob, "after, from ann"), ["during", "after, from ann"])
        bob.send_json("message", {"text": "after, from bob"})
        self.assertEqual(self.texts_until(ann, "after, from bob")[-2:], ["after, from ann", "after, from bob"])
        # A client that resumes from before the loss has every stored message.
        cara = self.connect(f"/chat/{room}/", worker=self.workers[1], since=last_before["id"])
        missed, _welcome = cara.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in missed], ["during", "after, from ann", "after, from bob"])
        dan.send_json("message", {"text": "elsewhere, after"})
        self.assertEqual(eve.receive_event("message")["text"], "elsewhere, after")
        return room, elsewhere, degraded_after

    def test_2_a_primary_killed_its_replica_takes_over_and_its_rooms_chat_again_without_loss(self):
        room, elsewhere, _ = self.lose_a_primary_and_chat_on("failover", lambda port: self.topology.node(port).kill())
        # Only the failed shard's rooms were caught up: the others lost nothing to catch up on.
        for worker in self.workers:
            self.assertIn("reconnected to Redis Cluster; resubscribed 1 channels", worker.log())
            self.assertIn(f"caught up {room} after a broker reconnect", worker.log())
            self.assertNotIn(f"caught up {elsewhere} ", worker.log())

    def test_3_a_room_whose_slot_moves_to_another_shard_chats_on_where_it_went(self):
        create_rooms("moving")
        channel = "{chat:moving}"
        ann = self.join("moving", self.workers[0], name="ann")
        bob = self.join("moving", self.workers[1], name="bob")
        ann.send_json("message", {"text": "before"})
        last_before = bob.receive_event("message")
        source = self.topology.owner(channel)
        target = next(port for port in self.topology.primaries() if port != source)
        reconnects = [worker.log().count("reconnected to Redis Cluster") for worker in self.workers]

        self.topology.move_slot(channel, target)
        # Redis told each worker its subscription ended there: each reads the slot map again and
        # subscribes where the room went (a reconnect, with its catch-up).
        for worker, before in zip(self.workers, reconnects):
            wait_until(lambda: worker.log().count("reconnected to Redis Cluster") > before, timeout=15,
                       message="the worker to follow the moved slot")
            wait_until(lambda: self.health(worker)[0] == 200, message="the worker to be healthy again")
            self.assertIn(f"127.0.0.1:{target}", self.health(worker)[1]["broker_shards"])
        self.assertEqual(self.topology.owner(channel), target)
        ann.send_json("message", {"text": "after, from ann"})
        self.assertEqual(self.texts_until(bob, "after, from ann")[-1], "after, from ann")
        bob.send_json("message", {"text": "after, from bob"})
        self.assertEqual(self.texts_until(ann, "after, from bob")[-2:], ["after, from ann", "after, from bob"])
        listeners = [c for c in client_list(target) if int(c.get("ssub", 0)) > 0]
        self.assertEqual(len(listeners), 2, listeners)  # one per worker, on the new owner
        # Presence keys moved with the slot: a newcomer sees both members.
        cara = self.connect("/chat/moving/", worker=self.workers[0], since=last_before["id"])
        missed, _welcome = cara.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in missed], ["after, from ann", "after, from bob"])
        self.assertEqual(cara.receive_event("presence")["count"], 3)

    def test_4_a_stopped_primary_is_noticed_its_replica_takes_over_and_its_rooms_chat_again_without_loss(self):
        """SIGSTOP: the shard's primary keeps its connections but answers nothing (a hung host, a
        partition). No TCP reset comes; the workers' health check notices within the interval."""
        def stop(port):
            self.topology.node(port).signal(signal.SIGSTOP)
            self.addCleanup(self.topology.node(port).signal, signal.SIGCONT)

        _, _, degraded_after = self.lose_a_primary_and_chat_on("hang", stop)
        self.assertLess(degraded_after, HEALTH_INTERVAL + 1)
