"""This worker process's open WebSocket connections (`open_connections`).

Counted for the connection and handshake limits and /healthz, swept by ONE greenlet per process for
liveness (server pings, dead peers, idle connections), and closed together on shutdown.
"""

import time

import gevent

from .. import conf
from ..supervisor import supervisor

SWEEP_INTERVAL = 1.0


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
            now = time.monotonic()
            for connection in list(self.connections):
                connection.check_liveness(now, ping_interval, ping_timeout, idle_timeout)


open_connections = OpenConnections()
