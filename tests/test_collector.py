"""realtime/server/collector.py: full garbage collections walk only what is new since the last one, and
what was frozen and then died with its connection is collected once enough connections closed."""

import gc
import re
import weakref

from django.test import SimpleTestCase, override_settings

from realtime.server import collector as collector_module
from realtime.server.collector import Collector
from realtime.testing import LiveWebSocketTestCase, wait_until


class Node:
    """A reference cycle: only the cyclic collector frees it."""

    def __init__(self):
        self.me = self


class Connections(list):
    """What the collector reads of the open connections: how many are open, how many ever closed."""

    closed = 0


class CollectorTests(SimpleTestCase):
    def setUp(self):
        self.connections = Connections()
        self.collector = Collector(self.connections)
        self.addCleanup(self.collector.uninstall)
        self.collector.install()

    def test_the_survivors_of_a_full_collection_are_frozen_and_not_walked_again(self):
        nodes = [Node() for _ in range(2000)]
        frozen_before = gc.get_freeze_count()
        gc.collect()
        self.assertGreaterEqual(gc.get_freeze_count() - frozen_before, 2000)
        self.assertEqual(gc.get_objects(2), [])  # the next full collection starts from nothing
        self.assertEqual(self.collector.full_collections, 1)
        young = Node()
        self.assertIn(young, gc.get_objects())
        self.assertNotIn(nodes[0], gc.get_objects())
        self.assertEqual(self.collector.frozen_since_reclaim, 1)

    def test_frozen_garbage_waits_for_enough_closed_connections_then_is_collected(self):
        self.connections.extend(range(1000))  # open
        node = Node()
        freed = []
        weakref.finalize(node, freed.append, "node")
        gc.collect()  # frozen with the open connections
        del node
        gc.collect()
        self.assertEqual(freed, [], "a frozen cycle is not collected")
        self.connections.closed = collector_module.RECLAIM_MIN_CLOSED
        self.assertFalse(self.collector.reclaim_due(now=0), "100 closed of 1,000 open is not a quarter")
        self.connections.closed = 250
        self.assertTrue(self.collector.reclaim_due(now=0))
        self.collector.reclaim()
        self.assertEqual(freed, ["node"])
        self.assertEqual(self.collector.reclaims, 1)
        self.assertFalse(self.collector.reclaim_due(now=0), "counted from the reclaim on")

    def test_with_nothing_frozen_since_the_start_closes_call_for_no_reclaim(self):
        self.connections.closed = 10_000
        self.assertFalse(self.collector.reclaim_due(now=10**9))

    def test_frozen_garbage_is_collected_after_reclaim_every_even_without_closes(self):
        gc.collect()
        self.assertFalse(self.collector.reclaim_due(now=self.collector.reclaimed_at + 1))
        self.assertTrue(self.collector.reclaim_due(now=self.collector.reclaimed_at + collector_module.RECLAIM_EVERY + 1))
        self.collector.reclaim()
        # Nothing new frozen since: a worker whose heap stays the same is not walked every 10 minutes.
        self.assertFalse(self.collector.reclaim_due(now=self.collector.reclaimed_at + 2 * collector_module.RECLAIM_EVERY))

    @override_settings(WEBSOCKET_GC_FREEZE=0)
    def test_off_it_only_counts(self):
        self.collector.uninstall()
        frozen = gc.get_freeze_count()
        collector = Collector(self.connections)
        self.addCleanup(collector.uninstall)
        collector.install()
        gc.collect()
        self.assertEqual((collector.full_collections, gc.get_freeze_count()), (1, frozen))
        self.assertEqual(collector.frozen_since_reclaim, 0)
        self.assertNotIn("gc-reclaim", collector_module.supervisor.loops)


def metric(text, name):
    return float(re.search(rf"^{name}\{{pid=\"\d+\"\}} (\S+)$", text, re.M).group(1))


class WorkerCollectorTests(LiveWebSocketTestCase):
    """A real worker: a full collection with members connected freezes their connections, and once
    they leave the reclaim loop gives their memory back."""

    MEMBERS = 200
    worker_env = {"WEBSOCKET_URLCONF": "tests.websocket_urls"}

    def metrics(self):
        text = self.worker.http_get("/metrics")[2]
        return {name: metric(text, f"realtime_gc_{name}") for name in
                ("full_collections_total", "frozen_objects", "reclaims_total")}

    def test_connections_are_frozen_by_a_full_collection_and_collected_after_they_close(self):
        start = self.metrics()
        self.assertGreater(start["frozen_objects"], 10_000, "the start-up heap is frozen")
        self.assertEqual(self.worker.http_get("/healthz")[2].count('"gc-reclaim": {"state": "running"'), 1)
        clients = [self.connect("/echo/") for _ in range(self.MEMBERS)]
        for client in clients:
            client.send("hi")
            self.assertEqual(client.receive(), "hi")
        self.connect("/test/collect-garbage/").receive()
        opened = self.metrics()
        self.assertGreater(opened["full_collections_total"], start["full_collections_total"])
        grown = opened["frozen_objects"] - start["frozen_objects"]
        self.assertGreater(grown, 20 * self.MEMBERS, "the open connections were frozen")
        for client in clients:
            client.close()
        # The reclaim loop looks every 5 s; 200 closed of 1 open is due.
        after = wait_until(lambda: (lambda m: m if m["reclaims_total"] > start["reclaims_total"] else None)(
            self.metrics()), timeout=15, message="a reclaim in the worker")
        self.assertLess(after["frozen_objects"] - start["frozen_objects"], grown / 4,
                        "the closed connections' objects are gone, not frozen")
