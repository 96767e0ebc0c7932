"""This worker process's open WebSocket connections (`open_connections`).

Counted for the connection and handshake limits and /healthz, swept by ONE greenlet per process for
liveness (server pings, dead peers, idle connections), and closed together on shutdown.
"""

import time

import gevent

from .. import conf
from ..supervisor import supervisor

SWEEP_INTERVAL = 1.0
# The sweeper yields after checking this many connections (under gevent a loop that never blocks never yields).
SWEEP_BATCH = 500


class OpenConnections:
    def __init__(self):
        self.connections = set()
        self.handshakes = 0  # upgrades between the request and the 101 (or the view's refusal)
        self.draining = False  # shutting down: new upgrades get 503
        self.closed = 0  # connections that have left, ever (realtime/server/collector.py reclaims by it)
        self._sweeper = None

    def __len__(self):
        return len(self.connections)

    def add(self, connection):
        self.connections.add(connection)
        if self._sweeper is None:
            self._sweeper = supervisor.spawn("connection-sweeper", self._sweep_forever)

    def discard(self, connection):
        if connection in self.connections:
            self.connections.remove(connection)
            self.closed += 1

    def close_all(self, code, reason):
        for connection in list(self.connections):
            connection.close(code, reason)

    def _sweep_forever(self):
        ping_interval = conf.get("WEBSOCKET_PING_INTERVAL")
        ping_timeout = conf.get("WEBSOCKET_PING_TIMEOUT")
        idle_timeout = conf.get("WEBSOCKET_IDLE_TIMEOUT")
        while True:
            gevent.sleep(min(SWEEP_INTERVAL, ping_interval / 2))
            self.sweep(time.monotonic(), ping_interval, ping_timeout, idle_timeout)

    def sweep(self, now, *timeouts):
        """One pass: each connection pings, closes if idle, drops if dead (its core decides). Other
        greenlets run every SWEEP_BATCH connections: a pass over 10,000, with their pings, must not
        hold up the process's messages."""
        for checked, connection in enumerate(list(self.connections), 1):
            connection.check_liveness(now, *timeouts)
            if checked % SWEEP_BATCH == 0:
                gevent.sleep(0)


open_connections = OpenConnections()
