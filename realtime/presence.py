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
(realtime/presence_diff.py), numbered and counted by Redis in the same script that applies them,
so that every client sees the diffs in one order with the room's member count after each.

A worker whose event loop stalls for longer than PRESENCE_TTL - PRESENCE_REFRESH is taken for
dead in the same way; its members come back at its next refresh (without a diff).

Without Redis (the in-process broker: one worker process) members live in a dict: no other
process can leave members behind.
"""

import json
import logging
import time
from dataclasses import dataclass, field

import gevent
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .brokers import get_broker
from .brokers.base import UNREACHABLE, Names
from .envelope import envelope
from .presence_diff import PendingDiff, diff_event
from .shared_reads import SharedReads
from .supervisor import supervisor

log = logging.getLogger("realtime.presence")

# KEYS of every script: info hash, expiry set, id set, diff counter.
# Add or refresh members. ARGV: ttl, then id, info, id, info...
# The group's keys expire too, so a group whose every worker died leaves nothing behind.
TOUCH_FUNCTION = """
local function touch(ttl, args, first, last)
  local t = redis.call('TIME')
  local expires = tonumber(t[1]) + tonumber(t[2]) / 1e6 + ttl
  for i = first, last, 2 do
    redis.call('HSET', KEYS[1], args[i], args[i + 1])
    redis.call('ZADD', KEYS[2], expires, args[i])
    redis.call('ZADD', KEYS[3], 0, args[i])
  end
  local ms = math.ceil(ttl * 1000)
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ms) end
end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
-- The live members' infos after `from` ('-': from the start), at most `limit`, in id order, and the
-- next page's cursor ('' at the end). Two calls for the whole page, not two per member (ZMSCORE: 6.2).
local function page(from, limit, time)
  local ids = redis.call('ZRANGEBYLEX', KEYS[3], from, '+', 'LIMIT', 0, limit)
  local infos = {}
  if #ids == 0 then return infos, '' end
  local expiries = redis.call('ZMSCORE', KEYS[2], unpack(ids))
  local values = redis.call('HMGET', KEYS[1], unpack(ids))
  for i = 1, #ids do
    if expiries[i] and tonumber(expiries[i]) > time and values[i] then infos[#infos + 1] = values[i] end
  end
  return infos, #ids == limit and ids[#ids] or ''
end
"""

TOUCH = TOUCH_FUNCTION + """
touch(tonumber(ARGV[1]), ARGV, 2, #ARGV)
return 1
"""

# Remove the members whose time is up and return their infos: atomic, so each expired member
# is returned to exactly one caller however many workers sweep at once.
SWEEP = TOUCH_FUNCTION + """
local expired = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now())) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then expired[#expired + 1] = info end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
return expired
"""

# Touch the members given (none, or a joiner), then read one page of the live members in id order.
# ARGV: ttl, after (an id; '' from the start), limit, then id, info, ...
# Returns {last diff's seq, live count, next cursor ('' at the end), info, info, ...}.
PAGE = TOUCH_FUNCTION + """
touch(tonumber(ARGV[1]), ARGV, 4, #ARGV)
local time = now()
local infos, cursor = page(ARGV[2] == '' and '-' or '(' .. ARGV[2], tonumber(ARGV[3]), time)
return {redis.call('GET', KEYS[4]) or '0', redis.call('ZCOUNT', KEYS[2], '(' .. time, '+inf'), cursor,
        unpack(infos)}
"""

# Apply one worker's coalesced changes and announce them: touch the joins, remove the leavers,
# then (when there is something to announce) number the event and publish it with the live count, and
# with a page limit above 0 the first page of the list (a `presence` event: PendingDiff.event_parts).
# ARGV: ttl, channel (its name on the wire), head, tail, page limit, number of touched ids n, then n
# id/info pairs, then removed ids. PUBLISH becomes SPUBLISH with Redis Cluster (RedisStore).
FLUSH = TOUCH_FUNCTION + """
local PUBLISH = '{publish}'
local n = tonumber(ARGV[6])
touch(tonumber(ARGV[1]), ARGV, 7, 6 + 2 * n)
for i = 7 + 2 * n, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
end
if ARGV[3] == '' then return 0 end
-- Microseconds of Redis's clock, kept strictly increasing: after a Redis restart (the counter
-- lost) the numbers still go up, so no client takes a new diff for one it already has.
local t = redis.call('TIME')
local seq = string.format('%d', math.max(tonumber(t[1]) * 1e6 + tonumber(t[2]),
                                         tonumber(redis.call('GET', KEYS[4]) or '0') + 1))
redis.call('SET', KEYS[4], seq, 'PX', math.ceil(tonumber(ARGV[1]) * 1000))
local time = now()
local count = redis.call('ZCOUNT', KEYS[2], '(' .. time, '+inf')
local listed = ''
if tonumber(ARGV[5]) > 0 then
  local infos, cursor = page('-', tonumber(ARGV[5]), time)
  listed = ',"next":' .. (cursor == '' and 'null' or cjson.encode(cursor)) .. ',"members":['
           .. table.concat(infos, ',') .. ']'
end
redis.call(PUBLISH, ARGV[2], ARGV[3] .. seq .. ',"count":' .. count .. listed .. ARGV[4])
return seq
"""


# Seconds a joiner's first page waits, while joiners of its group keep coming, for more to share
# its read: a fraction of a join's own latency, and a crowd costs a read per few joiners.
JOIN_GATHER = 0.005


@dataclass
class Page:
    """A bounded part of a group's member list: `infos` (JSON text, in id order) after a cursor."""

    seq: int  # the number of the last diff applied to the list this page was read from
    count: int  # live members in the group, on every worker
    next: str | None  # the cursor for the page after this one (None: this was the last)
    infos: list = field(default_factory=list)
    # The event texts made of this page: joiners who share a page share its text too.
    texts: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def members(self):
        return [json.loads(info) for info in self.infos]

    def event(self, name, labels):
        """The envelope text of this page as event `name`: the infos go in as they are, as JSON text."""
        key = (name, *labels.items())
        text = self.texts.get(key)
        if text is None:
            head = envelope(name, {**labels, "seq": self.seq, "count": self.count, "next": self.next})
            text = self.texts[key] = head[:-2] + ',"members":[' + ",".join(self.infos) + "]}}"
        return text


class RedisStore:
    """The shared member lists, in Redis (see the module docstring). Keys and the diff's channel are
    named by the broker's `names` (prefix; with Redis Cluster a hash tag, so a group's keys and
    channel share a shard, and the diff goes out with SPUBLISH: `sharded`)."""

    expires = True

    def __init__(self, client, ttl, names=None, sharded=False):
        self.client, self.ttl, self.names = client, ttl, names or Names()
        flush = FLUSH.replace("{publish}", "SPUBLISH" if sharded else "PUBLISH")
        self._touch, self._sweep, self._page, self._flush = (
            client.register_script(s.encode()) for s in (TOUCH, SWEEP, PAGE, flush))

    def keys(self, group):
        return [self.names.key("presence", group, suffix) for suffix in ("", ":expiry", ":ids", ":seq")]

    def touch(self, group, members):
        self._touch(keys=self.keys(group), args=[self.ttl, *pairs(members)])

    def remove(self, group, member_id):
        self._flush(keys=self.keys(group), args=[self.ttl, self.names.channel(group), "", "", 0, 0, member_id])

    def sweep(self, group):
        return self._sweep(keys=self.keys(group))

    def page(self, group, after, limit, joining):
        seq, count, cursor, *infos = self._page(keys=self.keys(group),
                                                args=[self.ttl, after, limit, *pairs(joining)])
        return Page(int(seq), int(count), cursor.decode() or None, [info.decode() for info in infos])

    def flush(self, group, diff, head, tail, page_limit):
        self._flush(keys=self.keys(group), args=[self.ttl, self.names.channel(group), head, tail, page_limit,
                                                 len(diff.joins), *pairs(diff.joins), *diff.removed])


class LocalStore:
    """The member lists of the one worker process there is (no Redis); diffs go to the local broker."""

    expires = False

    def __init__(self, publish):
        self.publish = publish
        self.groups = {}  # group -> {id: info JSON}
        self.seqs = {}

    def touch(self, group, members):
        self.groups.setdefault(group, {}).update(members)

    def remove(self, group, member_id):
        members = self.groups.get(group, {})
        members.pop(member_id, None)
        if not members:
            self.groups.pop(group, None)

    def sweep(self, group):
        return []

    def page(self, group, after, limit, joining):
        self.touch(group, joining)
        members = self.groups.get(group, {})
        ids = sorted(member_id for member_id in members if member_id > after)[:limit]
        cursor = ids[-1] if len(ids) == limit else None
        return Page(self.seqs.get(group, 0), len(members), cursor, [members[i] for i in ids])

    def flush(self, group, diff, head, tail, page_limit):
        self.touch(group, diff.joins)
        for member_id in diff.removed:
            self.remove(group, member_id)
        if head:
            seq = self.seqs[group] = max(time.time_ns() // 1000, self.seqs.get(group, 0) + 1)
            page = self.page(group, "", page_limit, {}) if page_limit else None
            self.publish(group, diff_event(head, seq, len(self.groups.get(group, {})), tail, page))
        if group not in self.groups:
            self.seqs.pop(group, None)


def pairs(members):
    for member_id, info in members.items():
        yield member_id
        yield info


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
            head, tail, page_limit = diff.event_parts(labels, self.page_size) if diff.announces() else ("", "", 0)
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

    @staticmethod
    def _safely(operation, *args):
        """Presence is best effort: with Redis down, sockets keep working without it (False)."""
        try:
            return operation(*args)
        except UNREACHABLE as exc:
            log.warning("presence: %s failed: %s", operation.__name__, exc)
            return False


_presence = None


def get_presence():
    """This worker process's presence tracker, on the broker's store (Redis when the broker is)."""
    global _presence
    if _presence is None:
        ttl, refresh = conf.get("PRESENCE_TTL"), conf.get("PRESENCE_REFRESH")
        if not 0 < refresh < ttl:
            raise ImproperlyConfigured("PRESENCE_REFRESH must be positive and shorter than PRESENCE_TTL.")
        window, page_size = conf.get("PRESENCE_DIFF_WINDOW"), int(conf.get("PRESENCE_PAGE_SIZE"))
        if window <= 0 or not 1 <= page_size <= 1000:  # a page is one reply (the scripts unpack its ids)
            raise ImproperlyConfigured("PRESENCE_DIFF_WINDOW must be positive and PRESENCE_PAGE_SIZE from 1 to 1000.")
        _presence = Presence(get_broker().presence_store(ttl), refresh, window, page_size)
    return _presence


def flush_before_exit():
    """Send this process's pending presence changes (its members' leaves) before it exits."""
    if _presence is not None:
        for group in list(_presence.local):  # anyone still listed here is leaving with the process
            for member_id in list(_presence.local.get(group, {})):
                _presence.leave(group, member_id)
        _presence.flush()
