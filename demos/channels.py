"""The clock's topic `clock`: the process's one ticker (demos/clock.py) pushes `time` events; the
join's reply is the latest tick. The one-topic route `/time/` (demos/sockets.py) serves it too."""

import json

from realtime.channels import Channel, topic

from .clock import CHANNEL, get_ticker


class ClockChannel(Channel):
    server_publishes = False  # ticks made in each worker process
    def join(self, params):
        ticker = get_ticker()
        self.subscribe(CHANNEL)
        # No greenlet switch since subscribing: the tick in the reply cannot be older than a pushed one.
        return json.loads(ticker.latest)["data"] if ticker.latest else {}


topicpatterns = [topic("clock", ClockChannel, name="clock")]
