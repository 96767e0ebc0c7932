"""/metrics tells the truth: every metric docs/limits.md names moves when what it counts happens,
on a real worker; and with several worker processes on one port, any one scrape answers for all."""

import importlib
import os
import re
import signal
from pathlib import Path

import redis
from django.conf import settings
from django.test import SimpleTestCase
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from realtime.server.metrics import SharedNumbers
from realtime.testing import LiveWebSocketTestCase, WorkerProcess, wait_until
from tests.history import RoomClientsMixin

# Where each metric docs/limits.md names is seen to move (a test of this module unless it says).
MOVES = {
    "realtime_connections": "MetricsMoveTests.test_a_client_and_its_message_move_connections_messages_and_bytes",
    "realtime_connections_opened_total": "MetricsMoveTests.test_a_client_and_its_message_move_connections_messages_and_bytes",
    "realtime_messages_received_total": "MetricsMoveTests.test_a_client_and_its_message_move_connections_messages_and_bytes",
    "realtime_messages_sent_total": "MetricsMoveTests.test_a_client_and_its_message_move_connections_messages_and_bytes",
    "realtime_received_bytes_total": "MetricsMoveTests.test_a_client_and_its_message_move_connections_messages_and_bytes",
    "realtime_sent_bytes_total": "MetricsMoveTests.test_a_client_and_its_message_move_connections_messages_and_bytes",
    "realtime_closes_total": "MetricsMoveTests.test_a_close_by_a_limit_is_counted_by_its_reason",
    "realtime_broker_connected": "MetricsMoveTests.test_a_redis_outage_moves_the_broker_s_metrics",
    "realtime_broker_reconnects_total": "MetricsMoveTests.test_a_redis_outage_moves_the_broker_s_metrics",
    "realtime_publish_seconds": "MetricsMoveTests.test_a_publish_is_timed",
    "realtime_loop_restarts_total": "MetricsMoveTests.test_a_loop_that_fails_moves_its_metrics",
    "realtime_loop_up": "MetricsMoveTests.test_a_loop_that_fails_moves_its_metrics",
    "realtime_gc_full_collections_total": "MetricsMoveTests.test_a_full_collection_moves_the_collector_s_metrics",
    "realtime_gc_full_seconds_total": "MetricsMoveTests.test_a_full_collection_moves_the_collector_s_metrics",
    "realtime_gc_frozen_objects": "MetricsMoveTests.test_a_full_collection_moves_the_collector_s_metrics",
    # 100 closed connections at least, and the reclaim loop's 5 s: that test does it.
    "realtime_gc_reclaims_total": "tests.test_collector.WorkerCollectorTests."
                                  "test_connections_are_frozen_by_a_full_collection_and_collected_after_they_close",
}


def documented_metrics():
    """The metric names of docs/limits.md's /metrics paragraph."""
    text = (Path(settings.BASE_DIR) / "docs" / "limits.md").read_text()
    paragraph = text[text.index("- `GET /metrics`"):]
    paragraph = paragraph[:paragraph.index("\n- ")]
    return set(re.findall(r"`(realtime_[a-z_]+)[`{]", paragraph))


def scrape(worker):
    """{(sample name, labels but pid): value, summed over processes}, and the pids answering."""
    samples, pids = {}, set()
    for family in text_string_to_metric_families(worker.http_get("/metrics")[2]):
        for sample in family.samples:
            pids.add(sample.labels.get("pid"))
            key = (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid")))
            samples[key] = samples.get(key, 0) + sample.value
    return samples, pids - {None}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


class DocumentedMetricsTests(SimpleTestCase):
    def test_every_documented_metric_has_a_test_that_it_moves(self):
        self.assertEqual(set(MOVES), documented_metrics())
        for test in MOVES.values():
            module, cls, method = (test if test.startswith("tests.") else f"tests.test_metrics.{test}").rsplit(".", 2)
            self.assertTrue(hasattr(getattr(importlib.import_module(module), cls), method), test)


class SharedNumbersTests(SimpleTestCase):
    """What a process copies for the others' scrapes (here into plain values: the files are the
    worker's, with PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported)."""

    def test_counts_go_in_as_increments_a_count_that_started_over_whole_and_gauges_as_they_are(self):
        counts, gauges = iter([3, 5, 2]), iter([4, 1, 6])

        class Collector:
            def collect(self):
                restarts = CounterMetricFamily("realtime_test_restarts", "Restarts.", labels=["pid", "loop"])
                restarts.add_metric(["42", "x"], next(counts))
                up = GaugeMetricFamily("realtime_test_up", "Up.", labels=["pid"])
                up.add_metric(["42"], next(gauges))
                return [restarts, up]

        shared = SharedNumbers(Collector())
        for _ in range(3):
            shared.write()
        samples = {sample.name: (sample.labels, sample.value) for name in ("realtime_test_restarts", "realtime_test_up")
                   for sample in shared.metrics[name].collect()[0].samples if not sample.name.endswith("_created")}
        # 3, then 2 more, then 2 of a count that started over (a loop spawned again): 7. The pid is the file's.
        self.assertEqual(samples, {"realtime_test_restarts_total": ({"loop": "x"}, 7.0), "realtime_test_up": ({}, 6.0)})


class MetricsMoveTests(RoomClientsMixin, LiveWebSocketTestCase):
    use_redis = True
    worker_env = {"WEBSOCKET_URLCONF": "tests.websocket_urls"}

    def scrape(self):
        return scrape(self.worker)[0]

    def test_every_documented_metric_is_served(self):
        self.join("served").send_json("message", {"text": "one publish, so the histogram has a sample"})
        self.connect("/echo/")
        served = {re.sub(r"_(bucket|count|sum|created)$", "", name) for name, _ in wait_until(
            lambda: (lambda s: s if value(s, "realtime_publish_seconds_count") else None)(self.scrape()))}
        served |= {name for name, _ in self.scrape()}
        self.assertEqual(documented_metrics() - served, set())

    def test_a_client_and_its_message_move_connections_messages_and_bytes(self):
        before = self.scrape()
        client = self.connect("/echo/")
        client.send("hello")
        self.assertEqual(client.receive(), "hello")
        after = self.scrape()
        for name, grew in (("realtime_connections", 1), ("realtime_connections_opened_total", 1),
                           ("realtime_messages_received_total", 1), ("realtime_messages_sent_total", 1)):
            self.assertEqual(value(after, name) - value(before, name), grew, name)
        # Received: the masked frame (6 bytes of header, 5 of text); sent: the frame back (2 + 5).
        self.assertEqual(value(after, "realtime_received_bytes_total") - value(before, "realtime_received_bytes_total"), 11)
        self.assertEqual(value(after, "realtime_sent_bytes_total") - value(before, "realtime_sent_bytes_total"), 7)
        client.close()
        wait_until(lambda: value(self.scrape(), "realtime_connections") == value(before, "realtime_connections"),
                   message="the closed connection to leave the count")

    def test_a_close_by_a_limit_is_counted_by_its_reason(self):
        before = value(self.scrape(), "realtime_closes_total", reason="message_too_big")
        client = self.connect("/test/guarded-echo/", **{"pass": "1"})  # 16 bytes at most
        client.send("x" * 32)
        self.assertEqual(client.receive_close(), 1009)
        self.assertEqual(value(self.scrape(), "realtime_closes_total", reason="message_too_big"), before + 1)

    def test_a_redis_outage_moves_the_broker_s_metrics(self):
        before = self.scrape()
        self.assertEqual(value(before, "realtime_broker_connected"), 1)
        self.redis.stop()
        self.addCleanup(self.redis.start_if_stopped)
        wait_until(lambda: value(self.scrape(), "realtime_broker_connected") == 0, message="broker_connected 0")
        self.redis.start()
        after = wait_until(lambda: (lambda s: s if value(s, "realtime_broker_connected") == 1 else None)(self.scrape()),
                           timeout=15, message="broker_connected 1 again")
        self.assertEqual(value(after, "realtime_broker_reconnects_total"),
                         value(before, "realtime_broker_reconnects_total") + 1)

    def test_a_publish_is_timed(self):
        ann = self.join("timed")
        before = self.scrape()
        ann.send_json("message", {"text": "timed"})
        self.assertEqual(ann.receive_event("message")["text"], "timed")
        after = self.scrape()
        self.assertEqual(value(after, "realtime_publish_seconds_count") - value(before, "realtime_publish_seconds_count"), 1)
        self.assertGreater(value(after, "realtime_publish_seconds_sum"), value(before, "realtime_publish_seconds_sum"))

    def test_a_loop_that_fails_moves_its_metrics(self):
        listener = {"loop": "broker-listener"}
        before = self.scrape()
        self.assertEqual(value(before, "realtime_loop_up", **listener), 1)
        self.assertEqual(self.connect("/test/break-broker-listener/").receive(), "armed")
        redis.Redis.from_url(self.redis.url).publish("test:poison", "boom")
        # Down while it waits to restart (1 s), then up again, restarted once more.
        wait_until(lambda: value(self.scrape(), "realtime_loop_up", **listener) == 0, message="loop_up 0")
        after = wait_until(lambda: (lambda s: s if value(s, "realtime_loop_up", **listener) == 1 else None)(
            self.scrape()), message="loop_up 1 again")
        self.assertEqual(value(after, "realtime_loop_restarts_total", **listener),
                         value(before, "realtime_loop_restarts_total", **listener) + 1)

    def test_a_full_collection_moves_the_collector_s_metrics(self):
        before = self.scrape()
        self.connect("/test/collect-garbage/").receive()
        after = self.scrape()
        self.assertGreaterEqual(value(after, "realtime_gc_full_collections_total"),
                                value(before, "realtime_gc_full_collections_total") + 1)
        self.assertGreater(value(after, "realtime_gc_full_seconds_total"), value(before, "realtime_gc_full_seconds_total"))
        # What survived it (this client's connection, at least) was frozen.
        self.assertGreater(value(after, "realtime_gc_frozen_objects"), value(before, "realtime_gc_frozen_objects"))


class SeveralProcessesTests(LiveWebSocketTestCase):
    """WS_WORKERS=2 (gunicorn's workers) with deploy/gunicorn_ws.py: two processes on one port, and
    a scrape reaches one of them. Each answer covers both: counters summed, gauges per live process."""

    CLIENTS = 6

    @classmethod
    def start_worker(cls, **env):
        return WorkerProcess(env={**cls.worker_env, **env}, workers=2).start()

    def test_one_scrape_answers_for_every_process_and_a_killed_one_leaves_its_counts(self):
        clients = [self.connect("/echo/") for _ in range(self.CLIENTS)]
        for client in clients:
            client.send("hello")
            self.assertEqual(client.receive(), "hello")

        def both_counted():
            samples, pids = scrape(self.worker)
            return (samples, pids) if (len(pids) == 2 and value(samples, "realtime_connections") == self.CLIENTS
                                       and value(samples, "realtime_messages_received_total") == self.CLIENTS) else None

        samples, pids = wait_until(both_counted, message="a scrape with both processes' numbers")
        for _ in range(6):  # whichever process answers
            self.assertIsNotNone(both_counted())
        self.assertEqual(value(samples, "realtime_connections_opened_total"), self.CLIENTS)

        # A process killed (no goodbye): gunicorn starts another; its gauges go, its counts stay.
        text = self.worker.http_get("/metrics")[2]
        per_pid = {pid: float(count) for pid, count in re.findall(r'^realtime_connections\{pid="(\d+)"\} (\S+)$', text, re.M)}
        killed = max(per_pid, key=per_pid.get)
        os.kill(int(killed), signal.SIGKILL)
        samples, pids = wait_until(lambda: (lambda s, p: (s, p) if len(p) == 2 and killed not in p else None)(
            *scrape(self.worker)), timeout=20, message="the replacement process in the answer")
        self.assertEqual(value(samples, "realtime_connections"), self.CLIENTS - per_pid[killed])
        self.assertEqual(value(samples, "realtime_messages_received_total"), self.CLIENTS)
        self.assertEqual(self.worker.http_get("/healthz")[0], 200)  # the new one runs
