"""Presence changes coalesced into one diff per group and worker (Phoenix Presence's model).

A worker collects its members' joins, leaves and info changes for PRESENCE_DIFF_WINDOW seconds
and sends them as ONE `presence_diff` event: a crowd of n joining costs each member a few frames,
not n. Clients apply a diff's `leaves` first, then its `joins` (a join of a known id replaces its
info), and ignore a diff whose `seq` is not above the last one they applied: applying a diff twice,
or one their member list already reflects, changes nothing. The event's text is made in events.py.
"""


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
