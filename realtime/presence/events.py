"""The text of every presence event (docs/protocol.md, Presence), each kind built here only.

Every event has one layout: the kind and its labels (the head), then `seq` and `count` (which the
store knows: it numbers the diffs), then for a page of members `next` and `members`, then the rest
(the tail). `assemble` puts them together; the Redis store's flush script (flush.lua) does the same
between the head and tail built here, with the seq, count and page it reads in the same step.
Infos are JSON text already (each made once, when its member joined or changed): they are joined
as text, never decoded and encoded again.

- `presence`: a joiner's first page (`page_event`), or the first page of the list after more leaves
  than a page, with how many `joined` and `left` (`announcement`): the client starts over from it;
- `members`: a page a client asked for (`page_event`);
- `presence_diff`: a worker's joins and leaves of one window (`announcement`).
"""

import json


def head(kind, labels):
    """The event's start, up to the value of `seq`: `{"event":kind,"data":{labels...,"seq":`."""
    labelled = json.dumps(labels, separators=(",", ":"), ensure_ascii=False)[:-1] + ("," if labels else "")
    return f'{{"event":"{kind}","data":{labelled}"seq":'


def assemble(head, seq, count, tail, page=None):
    """The event text: `head`, seq, count, the page (a Page) if any, `tail`."""
    listed = f',"next":{json.dumps(page.next)},"members":[{",".join(page.infos)}]' if page is not None else ""
    return f'{head}{seq},"count":{count}{listed}{tail}'


def page_event(kind, labels, page):
    """`presence` (a joiner's first page) or `members` (a page asked for) of `page`."""
    return assemble(head(kind, labels), page.seq, page.count, "}}", page)


def announcement(diff, labels, limit):
    """(head, tail, page limit) of the event announcing a PendingDiff: the store fills in seq and
    count, and with a page limit (0: none) the first page of the list after the changes.

    A `presence_diff` lists at most `limit` joins, new infos of known members first: a crowd of n
    joining at once must not cost each member n entries (the count still has them all, and
    `joins_omitted` says how many were left out). Leaves cannot be left out (a member a client
    shows must not stay there after it left), so more than `limit` of them (a worker with thousands
    of members restarted or died) go out as a `presence` event instead: the first page of the list
    after the changes, which the client starts over from, with how many `joined` and `left`.
    """
    if len(diff.leaves) > limit:
        return head("presence", labels), f',"joined":{len(diff.fresh)},"left":{len(diff.leaves)}}}}}', limit
    joins = diff.joins
    if len(joins) > limit:
        ordered = sorted(joins, key=lambda member_id: member_id in diff.fresh)  # updates first
        joins = {member_id: joins[member_id] for member_id in ordered[:limit]}
    omitted = len(diff.joins) - len(joins)
    tail = (f',"joins":{json_object(joins)},"leaves":{json_object(diff.leaves)}'
            + (f',"joins_omitted":{omitted}' if omitted else "") + "}}")
    return head("presence_diff", labels), tail, 0


def json_object(infos):
    """{id: info, ...} of infos that are JSON text already."""
    return "{" + ",".join(json.dumps(member_id) + ":" + info for member_id, info in infos.items()) + "}"
