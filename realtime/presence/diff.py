"""Presence changes coalesced into one diff per group and worker (Phoenix Presence's model).

A worker collects its members' joins, leaves and info changes for PRESENCE_DIFF_WINDOW seconds
and sends them as ONE `presence_diff` event: a crowd of n joining costs each member a few frames,
not n. Clients apply a diff's `leaves` first, then its `joins` (a join of a known id replaces its
info), and ignore a diff whose `seq` is not above the last one they applied: applying a diff twice,
or one their member list already reflects, changes nothing.
"""

import json


class PendingDiff:
    """One group's changes in this worker since the last flush; infos are JSON text."""

    def __init__(self):
        self.joins = {}  # id -> info: new members, and new infos of known ones, to announce
        self.leaves = {}  # id -> info: members announced before who are gone
        self.fresh = set()  # ids that joined in this window: nobody was told about them yet
        self.removed = set()  # ids to take out of the shared member list at the flush

    def __bool__(self):
        return bool(self.joins or self.leaves or self.removed)

    def join(self, member_id, info):
        self.joins[member_id] = info
        self.fresh.add(member_id)

    def update(self, member_id, info):
        self.joins[member_id] = info

    def leave(self, member_id, info):
        """A member of this worker left: announced, unless its join was not announced either."""
        self.joins.pop(member_id, None)
        self.removed.add(member_id)
        if member_id in self.fresh:
            self.fresh.discard(member_id)
        else:
            self.leaves[member_id] = info

    def expire(self, member_id, info):
        """A member of a dead worker, already swept from the shared list: announce its leave."""
        self.joins.pop(member_id, None)
        self.leaves[member_id] = info

    def then(self, later):
        """This diff followed by `later` (to put back a diff that could not be sent)."""
        for member_id in later.removed:
            if member_id not in later.fresh:
                self.leave(member_id, later.leaves[member_id])
        for member_id, info in later.leaves.items():
            if member_id not in later.removed:
                self.expire(member_id, info)
        for member_id, info in later.joins.items():
            (self.join if member_id in later.fresh else self.update)(member_id, info)
        # Joined and gone within `later`: never announced, but still to be removed.
        self.removed |= later.removed - set(later.leaves)
        return self

    def announces(self):
        return bool(self.joins or self.leaves)

    def event_parts(self, labels, limit=None):
        """The event announcing these changes, in two halves: the store writes `seq` and `count`
        between them, and with a page limit (the third value; 0: none) the first page of the list.

        A `presence_diff` lists at most `limit` joins, new infos of known members first: a crowd of
        n joining at once must not cost each member n entries (the count still has them all, and
        `joins_omitted` says how many were left out). Leaves cannot be left out (a member a client
        shows must not stay there after it left), so more than `limit` of them (a worker with
        thousands of members restarted or died) go out as a `presence` event instead: the first
        page of the list after the changes, which the client starts over from, with how many
        `joined` and `left`. The infos are JSON already: they are joined as text, not decoded and
        encoded again.
        """
        data = ',"data":' + json.dumps(labels, separators=(",", ":"))[:-1] + ("," if labels else "") + '"seq":'
        if limit is not None and len(self.leaves) > limit:
            tail = f',"joined":{len(self.fresh)},"left":{len(self.leaves)}}}}}'
            return '{"event":"presence"' + data, tail, limit
        joins = self.joins
        omitted = 0
        if limit is not None and len(joins) > limit:
            ordered = sorted(joins, key=lambda member_id: member_id in self.fresh)  # updates first
            joins = {member_id: joins[member_id] for member_id in ordered[:limit]}
            omitted = len(self.joins) - limit
        tail = ',"joins":' + json_object(joins) + ',"leaves":' + json_object(self.leaves)
        tail += (f',"joins_omitted":{omitted}' if omitted else "") + "}}"
        return '{"event":"presence_diff"' + data, tail, 0


def json_object(infos):
    return "{" + ",".join(json.dumps(member_id) + ":" + info for member_id, info in infos.items()) + "}"


def diff_event(head, seq, count, tail, page=None):
    """The text of the event of `event_parts`: what the Redis script builds, for the in-process store.
    `page` (a Page) goes in when event_parts asked for one."""
    if page is not None:
        tail = f',"next":{json.dumps(page.next)},"members":[{",".join(page.infos)}]{tail}'
    return f'{head}{seq},"count":{count}{tail}'


class MemberList:
    """How a client follows a group: the reference for client.js's PresenceList (and the tests').

    `presence` (on joining, or a reset after many leaves, with `left`) starts it over unless the list
    is newer; `presence_diff` events apply in `seq` order, each once:
    one at or below the last applied `seq` is already reflected and changes nothing, one that came
    before `presence` is kept until it arrives. `members` holds what the client was sent (the first
    page, then diffs, then any pages it asked for); `count` is the group's size on every worker,
    after the latest diff. `next` is the cursor of the page to ask for (None: nothing to ask).
    A diff that left joins out (`joins_omitted`) makes the list incomplete anywhere in id order:
    then `next` is "" (from the start again), at once or at the end of the pass under way.
    """

    def __init__(self):
        self.seq, self.count, self.members, self.early = None, 0, {}, []
        self.next = None
        self.missed = False  # joins were left out behind the cursor of the pass under way

    def apply(self, event, data):
        """Apply a `presence`, `presence_diff` or `members` event. False for a `members` page that
        is older than the diffs applied (a member it lists may have left since): ask for it again."""
        if event == "presence":
            if self.seq is not None and (data["seq"] < self.seq or data["seq"] == self.seq and "left" in data):
                return True  # older than the list (a reset at the same seq: older than the joiner's page)
            self.seq, self.count = data["seq"], data["count"]
            self.members = {member["id"]: member for member in data["members"]}
            self.next, self.missed = data.get("next"), False
            early, self.early = self.early, []
            for diff in sorted(early, key=lambda diff: diff["seq"]):
                self.apply("presence_diff", diff)
        elif event == "members":
            if data["seq"] < self.seq:
                return False
            self.members.update((member["id"], member) for member in data["members"])
            self.next = data.get("next")
            if self.next is None and self.missed:
                self.next, self.missed = "", False
        elif event == "presence_diff":
            if self.seq is None:
                self.early.append(data)
            elif data["seq"] > self.seq:
                self.seq, self.count = data["seq"], data["count"]
                for member_id in data["leaves"]:
                    self.members.pop(member_id, None)
                self.members.update(data["joins"])
                if data.get("joins_omitted"):
                    if self.next:  # a pass is under way: finish it, then start again
                        self.missed = True
                    else:
                        self.next = ""
        return True
