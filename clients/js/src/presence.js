// A topic's member list (docs/protocol.md, Presence), kept from its `presence` (the count and a first
// page, after every join) and `presence_diff` pushes, and the pages `more()` asks for (`members`); the same rules as
// realtime/presence/diff.py's MemberList. Diffs apply in `seq` order and each once (leaves, then
// joins; a join of a known id replaces it); one that comes before `presence` waits for it. A reset
// `presence` (with `joined` and `left`: many left at once) starts the list over unless the list is
// as new. onChange(list, diff) runs after each change; diff is the applied presence_diff's data, a
// reset presence's, or null (a page).
// A diff that left joins out (joins_omitted) makes `next` "" (page again from the start), at once
// or after the pass under way: those joiners may sort anywhere in id order.
//   const people = new PresenceList(channel, (list, diff) => { list.count; list.members; });
//   people.more();  // ask for the next page, while list.next is not null
export class PresenceList {
  constructor(channel, onChange = () => {}) {
    this.channel = channel;
    this.onChange = onChange;
    this.seq = null;  // the last diff applied (null: waiting for this join's `presence`)
    this.count = 0;  // the group's size on every worker
    this.members = new Map();  // id -> {id, name, ...}: the first page, the diffs since, the pages asked for
    this.next = null;  // the cursor of the next page (null: none, or all asked for; "": from the start)
    this.missed = false;  // a diff left joins out behind the cursor of the pass under way
    this.asked = null;  // the cursor of the page asked for and not yet received
    this.early = [];
    channel.onJoin(() => { this.seq = null; this.early = []; this.asked = null; });
    channel.on("presence", (data) => this.presence(data));
    channel.on("presence_diff", (data) => (this.seq === null ? this.early.push(data) : this.applyDiff(data)));
  }

  presence(data) {
    const reset = "left" in data;  // sent to all after many leaves: the first page after them
    if (this.seq !== null && (data.seq < this.seq || (data.seq === this.seq && reset))) return;  // older
    this.seq = data.seq;
    this.count = data.count;
    this.next = data.next === undefined ? null : data.next;
    this.missed = false;
    this.asked = null;  // a page still on its way belongs to the list this one replaces
    this.members = new Map(data.members.map((member) => [member.id, member]));
    const early = this.early.sort((a, b) => a.seq - b.seq);
    this.early = [];
    this.onChange(this, reset ? data : null);
    for (const diff of early) this.applyDiff(diff);
  }

  applyDiff(diff) {
    if (diff.seq <= this.seq) return;  // already reflected
    this.seq = diff.seq;
    this.count = diff.count;
    for (const id of Object.keys(diff.leaves)) this.members.delete(id);
    for (const [id, member] of Object.entries(diff.joins)) this.members.set(id, member);
    if (diff.joins_omitted) {
      if (this.next) this.missed = true;  // a pass is under way: finish it, then start again
      else this.next = "";
    }
    this.onChange(this, diff);
  }

  page(data) {
    if (this.asked === null || !data || !Array.isArray(data.members)) return;  // asked before a reset: that pass is over
    if (data.seq < this.seq) {  // older than the diffs applied: a member it lists may be gone
      this.ask(this.asked);
      return;
    }
    this.asked = null;
    this.next = data.next === undefined ? null : data.next;
    if (this.next === null && this.missed) { this.next = ""; this.missed = false; }
    for (const member of data.members) this.members.set(member.id, member);
    this.onChange(this, null);
  }

  // Ask for the next page (false: nothing to ask, or a page is on its way).
  more() {
    if (this.next === null || this.asked !== null) return false;
    this.ask(this.next);
    return true;
  }

  // The page is the reply to `members`.
  ask(cursor) {
    this.asked = cursor;
    this.channel.push("members", {after: cursor}).then((response) => this.page(response), () => {
      if (this.asked === cursor) this.asked = null;  // lost with its connection: More asks again
    });
  }
}
