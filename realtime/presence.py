"""Who is connected to a group (a chat room, ...), across every worker process.

With Redis each group is two keys: a hash of member id -> JSON info, and a sorted set of
member id -> expiry time, measured on Redis's clock (so the workers' clocks need not agree).
A worker adds its members when they join and removes them when they leave; ONE refresher
greenlet per worker process moves the expiry of all its members PRESENCE_TTL seconds ahead
every PRESENCE_REFRESH seconds. A worker that dies without cleaning up (SIGKILL, a lost host)
stops refreshing, so its members expire. The bound:

- they are gone from `members()` at most PRESENCE_TTL seconds after the worker died;
- within PRESENCE_TTL + PRESENCE_REFRESH seconds the refresher of a worker that has members
  in the same group removes them and reports each one, exactly once across all workers, to
  the `on_expired` callback given at `join()` (the chat announces a `leave`).

A worker whose event loop stalls for longer than PRESENCE_TTL - PRESENCE_REFRESH is taken for
dead in the same way; its members come back at its next refresh (without a `join` notice).

Without Redis (the in-process broker: one worker process) members live in a dict: no other
process can leave members behind.
"""

import json
import logging

import gevent
import redis
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .broker import get_broker
from .supervisor import supervisor

log = logging.getLogger("realtime.presence")

# Add or refresh members. KEYS: info hash, expiry set. ARGV: ttl, then id, info, id, info...
# The group's keys expire too, so a group whose every worker died leaves nothing behind.
TOUCH = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], expires, ARGV[i])
end
local ms = math.ceil(tonumber(ARGV[1]) * 1000)
redis.call('PEXPIRE', KEYS[1], ms)
redis.call('PEXPIRE', KEYS[2], ms)
return 1
"""

# Remove the members whose time is up and return their infos: atomic, so each expired member
# is returned to exactly one caller however many workers sweep at once.
SWEEP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local expired = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then expired[#expired + 1] = info end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return expired
"""

# The infos of the members whose time is not up.
LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local infos = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then infos[#infos + 1] = info end
end
return infos
"""


class RedisStore:
    """The shared member lists, in Redis (see the module docstring)."""

    expires = True

    def __init__(self, client, ttl):
        self.client, self.ttl = client, ttl
        self._touch, self._sweep, self._live = (client.register_script(s) for s in (TOUCH, SWEEP, LIVE))

    @staticmethod
    def keys(group):
        return [f"presence:{group}", f"presence:{group}:expiry"]

    def touch(self, group, members):
        args = [self.ttl]
        for member_id, info in members.items():
            args += [member_id, info]
        self._touch(keys=self.keys(group), args=args)

    def remove(self, group, member_id):
        info_key, expiry_key = self.keys(group)
        with self.client.pipeline() as pipe:
            pipe.hdel(info_key, member_id).zrem(expiry_key, member_id).execute()

    def sweep(self, group):
        return self._sweep(keys=self.keys(group))

    def live(self, group):
        return self._live(keys=self.keys(group))


class LocalStore:
    """The member lists of the one worker process there is (no Redis)."""

    expires = False

    def __init__(self):
        self.groups = {}

    def touch(self, group, members):
        self.groups.setdefault(group, {}).update(members)

    def remove(self, group, member_id):
        members = self.groups.get(group, {})
        members.pop(member_id, None)
        if not members:
            self.groups.pop(group, None)

    def sweep(self, group):
        return []

    def live(self, group):
        return list(self.groups.get(group, {}).values())


class Presence:
    """This process's members, kept in the shared lists by one refresher greenlet."""

    def __init__(self, store, refresh):
        self.store, self.refresh = store, refresh
        self.local = {}  # group -> {member id: info JSON}, the members this process must refresh
        self.on_expired = {}  # group -> callback(info) for members a dead worker left behind
        self._refresher = None

    def join(self, group, member_id, info, on_expired=None):
        """Add a member; `info` is a JSON-able dict (its "id" is set to `member_id`)."""
        encoded = json.dumps({**info, "id": member_id})
        self.local.setdefault(group, {})[member_id] = encoded
        if on_expired is not None:
            self.on_expired[group] = on_expired
        self._safely(self.store.touch, group, {member_id: encoded})
        if self.store.expires and self._refresher is None:
            self._refresher = supervisor.spawn("presence-refresher", self._refresh_forever)

    def update(self, group, member_id, info):
        """Replace a member's info (a new name, say)."""
        self.join(group, member_id, info)

    def leave(self, group, member_id):
        members = self.local.get(group, {})
        members.pop(member_id, None)
        if not members:
            self.local.pop(group, None)
            self.on_expired.pop(group, None)
        self._safely(self.store.remove, group, member_id)

    def members(self, group):
        """Every live member of the group, in all workers: a list of info dicts."""
        return [json.loads(info) for info in self._safely(self.store.live, group) or []]

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
                    self._report_expired(group, json.loads(info))

    def _report_expired(self, group, info):
        callback = self.on_expired.get(group)
        if callback is None:
            return
        try:
            callback(info)
        except Exception:
            log.exception("presence: the expiry callback of %s failed", group)

    @staticmethod
    def _safely(operation, *args):
        """Presence is best effort: with Redis down, sockets keep working without it."""
        try:
            return operation(*args)
        except (redis.RedisError, OSError) as exc:
            log.warning("presence: %s failed: %s", operation.__name__, exc)
            return None


_presence = None


def get_presence():
    """This worker process's presence tracker (Redis when the broker is Redis)."""
    global _presence
    if _presence is None:
        ttl, refresh = conf.get("PRESENCE_TTL"), conf.get("PRESENCE_REFRESH")
        if not 0 < refresh < ttl:
            raise ImproperlyConfigured("PRESENCE_REFRESH must be positive and shorter than PRESENCE_TTL.")
        broker = get_broker()
        store = RedisStore(broker.client, ttl) if broker.kind == "redis" else LocalStore()
        _presence = Presence(store, refresh)
    return _presence
