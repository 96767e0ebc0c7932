"""Where presence keeps the member lists: Redis (shared by every worker) or this process alone.

With Redis each group is four keys: a hash of member id -> JSON info, a sorted set of member id ->
expiry time, measured on Redis's clock (so the workers' clocks need not agree), a sorted set of
the ids in id order (for paging through a big group), and the number of the last diff sent. They
are changed only by the small Lua scripts of this folder (*.lua): atomic, so a member that expired
is removed and reported by exactly one worker.

Which store a process uses follows from its broker (`store_for`): what the broker reaches, its
Redis client, its names and whether it is sharded. No broker builds a store, and no store knows
a broker's kind.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .events import assemble, page_event


def script(name):
    """The text of the script `name`.lua after the functions every script shares (common.lua)."""
    folder = Path(__file__).parent
    return ((folder / "common.lua").read_text() + (folder / f"{name}.lua").read_text()).encode()


# Read once, when the module is imported (pyproject.toml ships them with the package).
TOUCH, SWEEP, PAGE, FLUSH = (script(name) for name in ("touch", "sweep", "page", "flush"))


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
        """The text of this page as event `name` ("presence" or "members"; events.page_event)."""
        key = (name, *labels.items())
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = page_event(name, labels, self)
        return text


class Store:
    """What presence asks of a store. Infos are JSON text; `members` maps id -> info."""

    # Whether members expire (they must be refreshed): a store shared by processes that may die.
    expires = False

    def touch(self, group, members):
        """Add or refresh `members`."""
        raise NotImplementedError

    def remove(self, group, member_id):
        raise NotImplementedError

    def sweep(self, group):
        """Remove the expired members and return their infos (each to one caller only)."""
        raise NotImplementedError

    def page(self, group, after, limit, joining):
        """Add `joining` (id -> info), then the Page of at most `limit` members after the id `after`."""
        raise NotImplementedError

    def flush(self, group, diff, head, tail, page_limit):
        """Apply a PendingDiff and, with a `head`, publish its event on the group's channel
        (events.announcement: head and tail, and the page limit)."""
        raise NotImplementedError


def store_for(broker, ttl):
    """The store of the processes `broker` connects: in Redis through its client when it reaches
    other processes (with SPUBLISH when its channels are sharded), else this process's own."""
    if not broker.reaches_other_processes:
        return InProcessStore(broker.publish)
    return RedisStore(broker.client, ttl, broker.names, publish="SPUBLISH" if broker.sharded else "PUBLISH")


class RedisStore(Store):
    """The shared member lists, in Redis (see the module docstring). Keys and the diff's channel are
    named by `names` (the broker's: prefix; with Redis Cluster a hash tag, so a group's keys and
    channel share a shard, where the diff goes out with SPUBLISH: `publish`)."""

    expires = True

    def __init__(self, client, ttl, names, publish="PUBLISH"):
        if publish not in ("PUBLISH", "SPUBLISH"):
            raise ValueError(f"publish must be PUBLISH or SPUBLISH, not {publish!r}")
        self.client, self.ttl, self.names, self.publish = client, ttl, names, publish
        self._touch, self._sweep, self._page, self._flush = (
            client.register_script(text) for text in (TOUCH, SWEEP, PAGE, FLUSH))

    def keys(self, group):
        return [self.names.key("presence", group, suffix) for suffix in ("", ":expiry", ":ids", ":seq")]

    def touch(self, group, members):
        self._touch(keys=self.keys(group), args=[self.ttl, *pairs(members)])

    def remove(self, group, member_id):
        self._flush(keys=self.keys(group), args=[self.ttl, self.names.channel(group), self.publish, "", "", 0, 0,
                                                 member_id])

    def sweep(self, group):
        return self._sweep(keys=self.keys(group))

    def page(self, group, after, limit, joining):
        seq, count, cursor, *infos = self._page(keys=self.keys(group),
                                                args=[self.ttl, after, limit, *pairs(joining)])
        return Page(int(seq), int(count), cursor.decode() or None, [info.decode() for info in infos])

    def flush(self, group, diff, head, tail, page_limit):
        self._flush(keys=self.keys(group), args=[self.ttl, self.names.channel(group), self.publish, head, tail,
                                                 page_limit, len(diff.joins), *pairs(diff.joins), *diff.removed])


class InProcessStore(Store):
    """The member lists of the one worker process there is (no Redis); diffs go out through `publish`
    (the in-process broker's)."""

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
            self.publish(group, assemble(head, seq, len(self.groups.get(group, {})), tail, page))
        if group not in self.groups:
            self.seqs.pop(group, None)


def pairs(members):
    for member_id, info in members.items():
        yield member_id
        yield info
