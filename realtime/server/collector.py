"""Keep Python's cyclic garbage collector from stopping the worker to re-read every connection.

A full (generation 2) collection walks every tracked object, and a worker's heap is mostly its
connections (about 80 objects each): at 10,000 members one walk stops every socket for ~300 ms,
and while a crowd joins CPython starts one each time the heap grew by a quarter, finding nothing
(1.4 s of a 10,000-member join in `bench/FINDINGS.md`). So, in the worker:

- the heap built at start (Django, the apps, the URL patterns) is frozen once: it lives forever;
- what survives a full collection is frozen right after it (`gc.freeze`): those are long-lived
  connections, and the next full collection walks only what came since;
- frozen objects that later die in a reference cycle (a closed connection's parts) are reclaimed
  by ONE supervised loop: once the connections closed since the last reclaim reach a quarter of
  those open (or RECLAIM_EVERY passed with something frozen since), it unfreezes and collects.
  Amortized, a close costs a share of one walk: at 10,000 members, 300 ms per 2,500 closes.

Objects freed by reference counting (most of them) are freed at once, frozen or not.
"""

import gc
import time

import gevent

from .. import conf
from .connections import open_connections
from ..supervisor import supervisor

CHECK_EVERY = 5.0  # seconds between the reclaim loop's looks
RECLAIM_SHARE = 0.25  # closed connections, as a share of those open, that justify a full walk
RECLAIM_EVERY = 600.0  # seconds: the longest frozen garbage may wait
RECLAIM_MIN_CLOSED = 100


class Collector:
    def __init__(self, connections):
        self.connections = connections  # the open connections: their number and its `closed` count
        self.installed = False
        self.freezing = False
        self.closed_at_reclaim = 0  # connections.closed when frozen objects were last collected
        self.reclaimed_at = time.monotonic()
        self.connections_frozen = False  # a full collection froze open connections (they may die frozen)
        self.frozen_since_reclaim = 0  # full collections since the last reclaim, its own not counted
        self.reclaims = 0
        self.full_collections = 0
        self.full_seconds = 0.0  # time the full collections stopped the worker, all told
        self._started = 0.0

    def install(self):
        """Count full collections and their time; with WEBSOCKET_GC_FREEZE, freeze the start-up
        heap and the survivors of every full collection from now on."""
        if self.installed:
            return
        self.installed = True
        self.freezing = bool(conf.get("WEBSOCKET_GC_FREEZE"))
        if self.freezing:
            self.closed_at_reclaim = self.connections.closed
            gc.collect()
            gc.freeze()
            supervisor.spawn("gc-reclaim", self._reclaim_forever)
        gc.callbacks.append(self._on_collection)

    def uninstall(self):
        """Tests: back to CPython's own collector."""
        if self.installed:
            gc.callbacks.remove(self._on_collection)
            if self.freezing:
                supervisor.loops.pop("gc-reclaim").stop()
                gc.unfreeze()
            self.installed = self.freezing = False

    def _on_collection(self, phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.full_collections += 1
        self.full_seconds += time.perf_counter() - self._started
        if not self.freezing:
            return
        # Right after a full collection every tracked object is in generation 2 and just survived.
        gc.freeze()
        self.frozen_since_reclaim += 1
        self.connections_frozen = self.connections_frozen or len(self.connections) > 0

    def reclaim_due(self, now):
        """Frozen connections and enough closed since the last reclaim; or RECLAIM_EVERY passed
        since it and a full collection froze something new meanwhile (a worker whose heap does not
        grow never walks it all again)."""
        closed = self.connections.closed - self.closed_at_reclaim
        if self.connections_frozen and closed >= max(RECLAIM_MIN_CLOSED, RECLAIM_SHARE * len(self.connections)):
            return True
        return self.frozen_since_reclaim > 0 and now - self.reclaimed_at >= RECLAIM_EVERY

    def reclaim(self):
        """Unfreeze and collect: the one full walk frozen garbage costs."""
        self.closed_at_reclaim = self.connections.closed
        self.reclaimed_at = time.monotonic()
        self.reclaims += 1
        gc.unfreeze()
        gc.collect()  # _on_collection freezes what survived, the open connections among it
        self.frozen_since_reclaim = 0
        self.connections_frozen = len(self.connections) > 0

    def _reclaim_forever(self):
        while True:
            gevent.sleep(CHECK_EVERY)
            if self.reclaim_due(time.monotonic()):
                self.reclaim()


collector = Collector(open_connections)
