"""Where presence keeps the member lists: Redis (shared by every worker) or this process alone.

With Redis each group is four keys: a hash of member id -> JSON info, a sorted set of member id ->
expiry time, measured on Redis's clock (so the workers' clocks need not agree), a sorted set of
the ids in id order (for paging through a big group), and the number of the last diff sent. They
are changed only by the small Lua scripts below: atomic, so a member that expired is removed and
reported by exactly one worker.
"""

import json
import time
from dataclasses import dataclass, field

from ..envelope import envelope
from ..fanout.brokers.base import Names
from .diff import diff_event

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


class InProcessStore:
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
