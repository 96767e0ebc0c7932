"""One database read for a crowd: joiners that need the same rows share one query.

`SharedReads().get(key, load)` returns `load()`, run by a query that started AFTER the call: never
a result older than the caller (a joiner subscribed to live messages first, so any row its read
misses reaches it live). Callers with the same key share a read that has not started yet; one that
arrives while a read runs shares the NEXT one. So n members joining a room at once cost a handful
of queries, not n, and nobody gets rows from before they arrived.

Reads run in the process's database readers (realtime/db/: at most WEBSOCKET_DB_CONCURRENCY at
once, the rest wait their turn), so a storm never opens more database connections than that;
`SharedReads(run=...)` runs them elsewhere (presence runs its Redis reads in the caller).

A read can also carry what its callers bring to it: `get(key, load, share={...})` merges every
sharer's `share` and calls `load(shares)` (the members joining a group, added by the very read
that lists the group for them).
"""

import time

import gevent
from gevent.event import AsyncResult

from .readers import run_read


class Abandoned(Exception):
    """The caller that ran a shared read was killed: those sharing it start over."""


class Read:
    def __init__(self):
        self.result = AsyncResult()
        self.shares = {}  # what the callers sharing it bring (get's `share`)


class SharedReads:
    def __init__(self, run=run_read, gather=0.0):
        self.run = run  # runs a read and returns its result: in a database reader by default
        # While a key is busy (its last read ended less than 4 x `gather` s ago), a read that would
        # start at once waits `gather` s first, so that the crowd arriving meanwhile shares it.
        self.gather = gather
        self.pending = {}  # key -> the Read not started yet, that newcomers share
        self.running = {}  # key -> the Read in progress
        self.ended = {}  # key -> when its last read ended (monotonic), while that is recent

    def get(self, key, load, share=None):
        """`load()` (or `load(shares)`, given a `share` dict) run after this call began, by a
        reader for this call and any that share it."""
        read = self.pending.get(key)
        if read is not None:
            if share:
                read.shares.update(share)
            try:
                return read.result.get()
            except Abandoned:
                return self.get(key, load, share)
        read = self.pending[key] = Read()
        if share:
            read.shares.update(share)

        def start():
            # From here on, newcomers need a read that starts later than this one.
            if self.pending.get(key) is read:
                del self.pending[key]
            self.running[key] = read
            try:
                return load() if share is None else load(read.shares)
            finally:
                if self.running.get(key) is read:
                    del self.running[key]
                if self.gather:
                    self._ended(key)

        try:
            running = self.running.get(key)
            if running is not None:
                running.result.wait()  # it may have started before we arrived: ours comes after it
            elif self.gather and self.ended.get(key, -1.0) > time.monotonic() - 4 * self.gather:
                gevent.sleep(self.gather)
            value = self.run(start)
        except BaseException as error:
            if self.pending.get(key) is read:  # it never started (the caller was killed while queued)
                del self.pending[key]
            # A read's error is its sharers' too; a caller killed (GreenletExit) is not: they start over.
            read.result.set_exception(error if isinstance(error, Exception) else Abandoned())
            raise
        read.result.set(value)
        return value

    def _ended(self, key):
        now = self.ended[key] = time.monotonic()
        if len(self.ended) > 1000:  # forget keys that are not busy any more
            self.ended = {k: t for k, t in self.ended.items() if t > now - 4 * self.gather}
