"""The clock: ONE ticker greenlet per worker process feeds every clock socket.

It starts with the first clock client and ticks every CLOCK_INTERVAL seconds (on whole
multiples of it, so every worker ticks together). Each tick is encoded once and fanned out by
the hub on a process-local channel; a socket costs nothing but its place in the channel.
"""

import time

import gevent
from django.utils import timezone

from realtime.envelope import envelope, iso_utc
from realtime.fanout.hub import get_hub
from realtime.supervisor import supervisor

from . import conf

CHANNEL = "local:clock"


class Ticker:
    def __init__(self, interval):
        self.interval = interval
        self.count = 0  # this ticker's tick number: two clients with the same number got the same tick
        self.latest = None  # the last tick, for a client that connects between two ticks
        self._greenlet = None

    def start(self):
        if self._greenlet is None:
            self._greenlet = supervisor.spawn("clock-ticker", self._run)

    def tick(self):
        self.count += 1
        utc = iso_utc(timezone.now())
        self.latest = envelope("time", {"tick": self.count, "utc": utc, "interval": self.interval})
        get_hub().deliver_here(CHANNEL, self.latest.encode())

    def _run(self):
        while True:
            self.tick()
            gevent.sleep(self.interval - time.time() % self.interval)


_ticker = None


def get_ticker():
    """This worker process's ticker, started on first use."""
    global _ticker
    if _ticker is None:
        _ticker = Ticker(conf.get("CLOCK_INTERVAL"))
        _ticker.start()
    return _ticker
