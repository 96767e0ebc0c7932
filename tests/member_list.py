"""How a conforming client follows a group's member list (docs/protocol.md, Presence): the rules of
the browser client's PresenceList (clients/js/src/presence.js), in Python, for the tests' clients (tests/test_presence.py, tests/crowd.py)
and the rules' own tests (tests/test_presence_diff.py)."""


class MemberList:
    """A member list as a client keeps it.

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
