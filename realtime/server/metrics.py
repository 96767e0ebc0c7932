"""Counters for /metrics and /healthz.

The per-message path only bumps plain integers on `stats`; they become Prometheus metrics when
scraped (a custom collector), so no lock is taken per message. Counts are per worker process
(each gunicorn worker answers for itself; the `pid` label tells them apart).
"""

import gc
import os

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..supervisor import supervisor


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


def install(open_connections, broker):
    """Register the collector once, in the worker process."""
    prometheus_registry.register(StatsCollector(open_connections, broker))


def render():
    return generate_latest(prometheus_registry)
