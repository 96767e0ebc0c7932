"""Counters for /metrics and /healthz.

The per-message path only bumps plain integers on `stats`; they become Prometheus metrics when
scraped (a custom collector), so no lock is taken per message. Each metric carries the worker
process's `pid`.

Several worker processes on one port (gunicorn's `workers`, WS_WORKERS > 1) share it: a scrape
reaches one of them at random. Then prometheus_client's multiprocess mode is on
(PROMETHEUS_MULTIPROC_DIR, which deploy/gunicorn_ws.py makes): each process copies its numbers
into its files in that folder once a second (the `metrics-writer` loop) and when it answers a
scrape, and the answer is read from every process's files: counters are the totals of all the
instance's processes (dead ones included, so they never go back), gauges one per live process
(`pid`). A process's gauges leave with it (prometheus_client's `mark_process_dead`: the worker on
its way out, gunicorn's `child_exit` hook for one that was killed).
"""

import gc
import os

import gevent
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ..supervisor import supervisor

# How often a process copies its numbers for the others' scrapes (multiprocess mode).
SHARE_INTERVAL = 1.0


class Stats:
    def __init__(self):
        self.messages_in = self.messages_out = 0
        self.bytes_in = self.bytes_out = 0
        self.connections_opened = 0
        # close reason -> count: slow_consumer, rate_limited, message_too_big, keepalive_timeout, ...
        self.closes = {}

    def count_close(self, reason):
        self.closes[reason] = self.closes.get(reason, 0) + 1


stats = Stats()
prometheus_registry = CollectorRegistry()
publish_seconds = Histogram("realtime_publish_seconds", "Time to hand one message to the broker.",
                            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                            registry=prometheus_registry)


class StatsCollector:
    def __init__(self, open_connections, broker):
        self.open_connections, self.broker = open_connections, broker

    def collect(self):
        pid = [str(os.getpid())]

        def counter(name, documentation, value):
            family = CounterMetricFamily(name, documentation, labels=["pid"])
            family.add_metric(pid, value)
            return family

        def gauge(name, documentation, value):
            family = GaugeMetricFamily(name, documentation, labels=["pid"])
            family.add_metric(pid, value)
            return family

        yield gauge("realtime_connections", "Open WebSocket connections.", self.open_connections())
        yield counter("realtime_connections_opened", "WebSocket connections accepted.", stats.connections_opened)
        yield counter("realtime_messages_received", "Messages received from clients.", stats.messages_in)
        yield counter("realtime_messages_sent", "Messages sent to clients (fan-out included).", stats.messages_out)
        yield counter("realtime_received_bytes", "Payload bytes received.", stats.bytes_in)
        yield counter("realtime_sent_bytes", "Bytes written to sockets.", stats.bytes_out)
        closes = CounterMetricFamily("realtime_closes", "Connections closed by a limit or fault, by reason.",
                                     labels=["pid", "reason"])
        for reason, count in sorted(stats.closes.items()):
            closes.add_metric(pid + [reason], count)
        yield closes
        broker = self.broker()
        yield gauge("realtime_broker_connected", "1 when the broker (Redis) is reachable.", int(broker.connected))
        yield counter("realtime_broker_reconnects", "Times the broker connection was re-established.",
                      broker.reconnects)
        restarts = CounterMetricFamily("realtime_loop_restarts", "Times a background loop was restarted after "
                                       "an unexpected exception.", labels=["pid", "loop"])
        up = GaugeMetricFamily("realtime_loop_up", "1 while a background loop runs (or ended on purpose), 0 while "
                               "it waits to restart or is dead.", labels=["pid", "loop"])
        for name, loop in sorted(supervisor.loops.items()):
            restarts.add_metric(pid + [name], loop.restarts)
            up.add_metric(pid + [name], int(loop.healthy))
        yield restarts
        yield up
        from .collector import collector

        yield counter("realtime_gc_full_collections", "Full (generation 2) garbage collections.",
                      collector.full_collections)
        yield counter("realtime_gc_full_seconds", "Time full garbage collections stopped the worker.",
                      collector.full_seconds)
        yield gauge("realtime_gc_frozen_objects", "Objects frozen out of garbage collection (gc.freeze).",
                    gc.get_freeze_count())
        yield counter("realtime_gc_reclaims", "Times frozen objects were unfrozen and collected.", collector.reclaims)


class SharedNumbers:
    """This process's numbers in prometheus_client's multiprocess files (see the module docstring),
    copied from the collector's samples: one definition of every metric, and plain integers on
    the per-message path."""

    def __init__(self, collector):
        self.collector = collector
        self.metrics = {}  # name -> the Counter or Gauge writing this process's file
        self.seen = {}  # (name, labels) -> the count last copied

    def write(self):
        for family in self.collector.collect():
            for sample in family.samples:
                labels = {name: value for name, value in sample.labels.items() if name != "pid"}  # the file's
                metric = self._metric(family, sorted(labels))
                child = metric.labels(**labels) if labels else metric
                if family.type == "counter":
                    key = (family.name, tuple(sorted(labels.items())))
                    last = self.seen.get(key, 0.0)
                    # Below the last: it started over (a loop spawned again under its name), all of it is new.
                    child.inc(sample.value - last if sample.value >= last else sample.value)
                    self.seen[key] = sample.value
                else:
                    child.set(sample.value)

    def _metric(self, family, labelnames):
        metric = self.metrics.get(family.name)
        if metric is None:
            if family.type == "counter":
                metric = Counter(family.name, family.documentation, labelnames, registry=None)
            else:
                metric = Gauge(family.name, family.documentation, labelnames, registry=None,
                               multiprocess_mode="liveall")
            self.metrics[family.name] = metric
        return metric

    def share_forever(self):
        while True:
            gevent.sleep(SHARE_INTERVAL)
            self.write()


shared = None  # SharedNumbers, in multiprocess mode


def multiprocess_folder():
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def install(open_connections, broker):
    """Register the collector once, in the worker process (and start sharing in multiprocess mode)."""
    global shared
    collector = StatsCollector(open_connections, broker)
    prometheus_registry.register(collector)
    if multiprocess_folder():
        shared = SharedNumbers(collector)
        shared.write()
        supervisor.spawn("metrics-writer", shared.share_forever)


def forget_this_process():
    """The worker is exiting: its gauges leave with it (its counts stay in the instance's totals)."""
    if multiprocess_folder():
        mark_process_dead(os.getpid())


def render():
    if shared is None:
        return generate_latest(prometheus_registry)
    shared.write()  # this process's numbers as of now; the others' at most SHARE_INTERVAL old
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry)
