"""Who is connected to a group (a chat room, ...), across every worker process.

With Redis each group is four keys: a hash of member id -> JSON info, a sorted set of member id ->
expiry time, measured on Redis's clock (so the workers' clocks need not agree), a sorted set of
the ids in id order (for paging through a big group), and the number of the last diff sent.
A worker adds a member when it joins (in the same round trip that reads the first page of the
list for it) and removes it at the next flush after it leaves; ONE refresher greenlet per worker
process moves the expiry of all its members PRESENCE_TTL seconds ahead every PRESENCE_REFRESH
seconds. A worker that dies without cleaning up (SIGKILL, a lost host) stops refreshing, so its
members expire. The bound:

- they are gone from member lists and counts at most PRESENCE_TTL seconds after the worker died;
- within PRESENCE_TTL + PRESENCE_REFRESH (+ PRESENCE_DIFF_WINDOW) seconds the refresher of a
  worker that has members in the same group removes them and announces each one's leave, exactly
  once across all workers (the sweep is atomic).

Changes are not announced one by one: ONE flusher greenlet per worker sends each group's joins,
leaves and info changes of the last PRESENCE_DIFF_WINDOW seconds as one `presence_diff` event
(realtime/presence/diff.py), numbered and counted by Redis in the same script that applies them,
so that every client sees the diffs in one order with the room's member count after each.

A worker whose event loop stalls for longer than PRESENCE_TTL - PRESENCE_REFRESH is taken for
dead in the same way; its members come back at its next refresh (without a diff).

Without Redis (the in-process broker: one worker process) members live in a dict: no other
process can leave members behind. Which store a process uses follows from its broker
(stores.store_for); this process's tracker is `get_presence()` (realtime/runtime.py).
"""

import json
import logging

import gevent
from django.core.exceptions import ImproperlyConfigured

from .. import conf
from ..db.shared_reads import SharedReads
from ..fanout.brokers.base import UNREACHABLE
from ..supervisor import supervisor
from .diff import PendingDiff
from .events import announcement
from .stores import store_for

log = logging.getLogger("realtime.presence")

# Seconds a joiner's first page waits, while joiners of its group keep coming, for more to share
# its read: a fraction of a join's own latency, and a crowd costs a read per few joiners.
JOIN_GATHER = 0.005

class Presence:
    """This process's members, kept in the shared lists by one refresher greenlet, their changes
    announced in one diff per group every `window` seconds by one flusher greenlet."""

    def __init__(self, store, refresh, window, page_size):
        self.store, self.refresh, self.window, self.page_size = store, refresh, window, page_size
        self.local = {}  # group -> {member id: info JSON}, the members this process must refresh
        self.labels = {}  # group -> what its diff events carry besides the changes (e.g. the room)
        self.pending = {}  # group -> PendingDiff: the changes not yet announced
        # In the joiner's greenlet; while a crowd joins, each read waits a few ms for more joiners.
        self.join_reads = SharedReads(run=lambda read: read(), gather=JOIN_GATHER)
        self._loops = None

    def join(self, group, member_id, info, labels=None):
        """Add a member (`info` is a JSON-able dict; its "id" is set to `member_id`) and return the
        first page of the group's list, whose count includes it (None while the store is unreachable)."""
        encoded = self._encode(member_id, info)
        self.local.setdefault(group, {})[member_id] = encoded
        self.labels[group] = labels or {}
        self.pending.setdefault(group, PendingDiff()).join(member_id, encoded)
        self._start()
        return self._first_page(group, member_id, encoded)

    def _first_page(self, group, member_id, encoded):
        """A joiner's first page. Joiners of a group who come while its last read is on its way
        share the next read (one round trip, one page, one event text): a crowd joining costs a
        read per round trip, not one per member."""
        def read(joining):
            return self._safely(self.store.page, group, "", self.page_size, joining) or None

        return self.join_reads.get(group, read, share={member_id: encoded})

    def update(self, group, member_id, info):
        """Replace a member's info (a new name, say)."""
        encoded = self._encode(member_id, info)
        self.local.setdefault(group, {})[member_id] = encoded
        self.pending.setdefault(group, PendingDiff()).update(member_id, encoded)

    def leave(self, group, member_id):
        members = self.local.get(group, {})
        info = members.pop(member_id, None)
        if not members:
            self.local.pop(group, None)
        if info is not None:
            self.pending.setdefault(group, PendingDiff()).leave(member_id, info)

    def page(self, group, after=""):
        """The members after the cursor `after` (a member id), at most `page_size` of them."""
        return self._safely(self.store.page, group, after, self.page_size, {}) or None

    @staticmethod
    def _encode(member_id, info):
        return json.dumps({**info, "id": member_id}, separators=(",", ":"), ensure_ascii=False)

    def _start(self):
        if self._loops is None:
            self._loops = [supervisor.spawn("presence-flusher", self._flush_forever)]
            if self.store.expires:
                self._loops.append(supervisor.spawn("presence-refresher", self._refresh_forever))

    def _flush_forever(self):
        while True:
            gevent.sleep(self.window)
            self.flush()

    def flush(self):
        """Announce every group's pending changes: one store round trip per group that has any."""
        for group in list(self.pending):
            diff = self.pending.pop(group)
            labels = self.labels.get(group, {})
            if group not in self.local:
                self.labels.pop(group, None)
            head, tail, page_limit = announcement(diff, labels, self.page_size) if diff.announces() else ("", "", 0)
            if self._safely(self.store.flush, group, diff, head, tail, page_limit) is False:
                # Not sent: the next flush sends these changes together with the later ones.
                self.pending[group] = diff.then(self.pending.get(group, PendingDiff()))
                self.labels.setdefault(group, labels)

    def _refresh_forever(self):
        while True:
            gevent.sleep(self.refresh)
            for group, members in list(self.local.items()):
                members = dict(members)
                self._safely(self.store.touch, group, members)
                # A member who left while the touch was on its way was just put back: remove it again.
                for member_id in members.keys() - self.local.get(group, {}).keys():
                    self._safely(self.store.remove, group, member_id)
                for info in self._safely(self.store.sweep, group) or []:
                    expired = json.loads(info)
                    self.pending.setdefault(group, PendingDiff()).expire(expired["id"], info.decode())

    def leave_everyone(self):
        """This process is exiting: its members leave with it, announced now (one diff per group)
        rather than found expired by other workers PRESENCE_TTL seconds later."""
        for group in list(self.local):
            for member_id in list(self.local.get(group, {})):
                self.leave(group, member_id)
        self.flush()

    def stop(self):
        """The way out: end the flusher and refresher (a test that changed the broker)."""
        for loop in self._loops or []:
            loop.stop()

    @staticmethod
    def _safely(operation, *args):
        """Presence is best effort: with Redis down, sockets keep working without it (False)."""
        try:
            return operation(*args)
        except UNREACHABLE as exc:
            log.warning("presence: %s failed: %s", operation.__name__, exc)
            return False


def tracker_for(broker):
    """A tracker for `broker`'s processes, with the PRESENCE_* settings."""
    ttl, refresh = conf.get("PRESENCE_TTL"), conf.get("PRESENCE_REFRESH")
    if not 0 < refresh < ttl:
        raise ImproperlyConfigured("PRESENCE_REFRESH must be positive and shorter than PRESENCE_TTL.")
    window, page_size = conf.get("PRESENCE_DIFF_WINDOW"), int(conf.get("PRESENCE_PAGE_SIZE"))
    if window <= 0 or not 1 <= page_size <= 1000:  # a page is one reply (the scripts unpack its ids)
        raise ImproperlyConfigured("PRESENCE_DIFF_WINDOW must be positive and PRESENCE_PAGE_SIZE from 1 to 1000.")
    return Presence(store_for(broker, ttl), refresh, window, page_size)
