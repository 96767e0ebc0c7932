"""REDIS_URL=redis+sentinel://...: chat across two workers survives losing the Redis primary.

A primary, a replica and three sentinels (tests/redis_topologies.py), started once for the class.
"""

HEALTH_INTERVAL = 2.0  # REDIS_HEALTH_CHECK_INTERVAL of the workers (5 s by default)


def health(worker):
    """(status, /healthz document) of a worker."""
    answer = worker.http_get("/healthz")
    return (answer[0], json.loads(answer[2])) if answer else (None, {})

import json
import signal
import time

from realtime.testing import wait_until
from tests.history import RoomClientsMixin, create_rooms
from tests.redis_topologies import SERVICE, SentinelTopology, TopologyTestCase, ask


class SentinelFailoverTests(RoomClientsMixin, TopologyTestCase):
    topology_class = SentinelTopology
    worker_count = 2

    def test_primary_killed_the_replica_takes_over_and_chat_goes_on_through_both_workers(self):
        create_rooms("failover")
        ann = self.join("failover", self.workers[0], name="ann")
        bob = self.join("failover", self.workers[1], name="bob")
        ann.send_json("message", {"text": "before"})
        last_before = bob.receive_event("message")
        self.assertEqual(last_before["text"], "before")
        for worker in self.workers:
            status, document = health(worker)
            self.assertEqual((status, document["broker"], document["broker_connected"]), (200, "redis-sentinel", True))
            self.assertEqual(document["broker_primary"], f"127.0.0.1:{self.topology.primary.port}")
        self.assertEqual(self.topology.primary_port(), self.topology.primary.port)

        self.topology.primary.kill()
        for worker in self.workers:
            wait_until(lambda: health(worker)[0] == 503, timeout=5, message="healthz to say degraded")
        # Sent while there is no primary: stored, and the sender is told it may not have gone out live.
        ann.send_json("message", {"text": "during"})
        self.assertEqual(ann.receive_event("error")["code"], "delivery_degraded")

        for worker in self.workers:
            wait_until(lambda: health(worker)[0] == 200, timeout=20, message="the worker to find the new primary")
        self.assertEqual(self.topology.primary_port(), self.topology.replica.port)  # Sentinel promoted it
        for worker in self.workers:  # and each worker listens there now
            self.assertEqual(health(worker)[1]["broker_primary"], f"127.0.0.1:{self.topology.replica.port}")
        # Both were caught up on their open sockets (the missed message, from the database) and
        # live chat goes on in both directions.
        ann.send_json("message", {"text": "after, from ann"})
        self.assertEqual(self.texts_until(bob, "after, from ann"), ["during", "after, from ann"])
        bob.send_json("message", {"text": "after, from bob"})
        # (ann's own "before" went by while she waited for her error.)
        self.assertEqual(self.texts_until(ann, "after, from bob"), ["during", "after, from ann", "after, from bob"])
        # A client that resumes from before the failover has every stored message.
        cara = self.connect("/chat/failover/", worker=self.workers[1], since=last_before["id"])
        missed, _welcome = cara.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in missed], ["during", "after, from ann", "after, from bob"])
        self.assertIn("reconnected to Redis; resubscribed", self.workers[0].log())


class SentinelPlannedFailoverTests(RoomClientsMixin, TopologyTestCase):
    """`SENTINEL FAILOVER`, as an operator does before maintenance: the old primary stays up as a
    replica (PUBLISH there would reach only its own subscribers), so the workers must move."""

    topology_class = SentinelTopology
    worker_count = 2

    def broker_primary(self, worker):
        answer = worker.http_get("/healthz")
        return json.loads(answer[2]).get("broker_primary") if answer and answer[0] == 200 else None

    def test_a_planned_failover_moves_both_workers_to_the_new_primary_and_nothing_is_lost(self):
        create_rooms("planned")
        ann = self.join("planned", self.workers[0], name="ann")
        bob = self.join("planned", self.workers[1], name="bob")
        ann.send_json("message", {"text": "before"})
        self.assertEqual(bob.receive_event("message")["text"], "before")
        old, new = self.topology.primary.port, self.topology.replica.port

        self.assertEqual(ask(self.topology.sentinels[0].port, "sentinel", "failover", SERVICE).strip(), "OK")
        wait_until(lambda: self.topology.primary_port() == new, timeout=20, message="the sentinels to promote the replica")
        wait_until(lambda: "role:slave" in (ask(old, "info", "replication") or ""), timeout=20,
                   message="the old primary to be turned into a replica (it stays up)")
        for worker in self.workers:
            wait_until(lambda: self.broker_primary(worker) == f"127.0.0.1:{new}", timeout=20,
                       message="the worker to listen to the new primary")
        # Each gets every message once, in order, in both directions.
        ann.send_json("message", {"text": "after, from ann"})
        self.assertEqual(self.texts_until(bob, "after, from ann"), ["after, from ann"])
        bob.send_json("message", {"text": "after, from bob"})
        self.assertEqual(self.texts_until(ann, "after, from bob"), ["before", "after, from ann", "after, from bob"])
        self.assertEqual(self.texts_until(bob, "after, from bob"), ["after, from bob"])


class SentinelPrimaryHangsTests(RoomClientsMixin, TopologyTestCase):
    """The primary stops answering but keeps its connections (SIGSTOP: a hung host, a partition):
    no TCP reset comes. The workers' health check notices, the sentinels fail over, the workers
    follow to the promoted replica."""

    topology_class = SentinelTopology
    worker_count = 2
    worker_env = {"REDIS_HEALTH_CHECK_INTERVAL": str(HEALTH_INTERVAL)}

    def test_a_stopped_primary_is_noticed_the_workers_follow_the_failover_and_nothing_is_lost(self):
        create_rooms("hung")
        ann = self.join("hung", self.workers[0], name="ann")
        bob = self.join("hung", self.workers[1], name="bob")
        ann.send_json("message", {"text": "before"})
        last_before = bob.receive_event("message")
        new = self.topology.replica.port

        self.topology.primary.signal(signal.SIGSTOP)
        self.addCleanup(self.topology.primary.signal, signal.SIGCONT)
        stopped = time.monotonic()
        for worker in self.workers:
            wait_until(lambda: health(worker)[0] == 503, timeout=HEALTH_INTERVAL + 2,
                       message="healthz to say degraded")
        self.assertLess(time.monotonic() - stopped, HEALTH_INTERVAL + 1)
        # Stored whatever happens; delivered live if the failover came first, else caught up below.
        ann.send_json("message", {"text": "during"})

        wait_until(lambda: self.topology.primary_port() == new, timeout=20, message="the sentinels to promote the replica")
        for worker in self.workers:
            wait_until(lambda: health(worker)[0] == 200, timeout=20, message="the worker to find the new primary")
            self.assertEqual(health(worker)[1]["broker_primary"], f"127.0.0.1:{new}")
        ann.send_json("message", {"text": "after, from ann"})
        self.assertEqual(self.texts_until(bob, "after, from ann"), ["during", "after, from ann"])
        bob.send_json("message", {"text": "after, from bob"})
        self.assertEqual(self.texts_until(ann, "after, from bob"), ["before", "during", "after, from ann", "after, from bob"])
        # A client that resumes from before the stop has every stored message.
        cara = self.connect("/chat/hung/", worker=self.workers[1], since=last_before["id"])
        missed, _welcome = cara.receive_until("welcome")
        self.assertEqual([m["data"]["text"] for m in missed], ["during", "after, from ann", "after, from bob"])
