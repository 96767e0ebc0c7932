// PresenceList: the rules of realtime/presence/diff.py's MemberList (tests/test_presence_diff.py),
// on a channel the test feeds.
import assert from "node:assert/strict";
import {test} from "node:test";
import {PresenceList} from "../src/index.js";
import {fakeTime, joined, liveSocket, pushOf} from "./helpers.js";

function room(t) {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const {channel} = joined(socket, ws, "chat:lobby");
  const changes = [];
  const list = new PresenceList(channel, (_, diff) => changes.push(diff));
  const send = (event, data) => ws.push(pushOf("chat:lobby", event, data));
  return {ws, list, send, changes, channel, socket};
}

const member = (id, name) => ({id, name});
const diff = (seq, count, joins = [], leaves = []) => ({
  seq, count, joins: Object.fromEntries(joins.map(([id, name]) => [id, member(id, name)])),
  leaves: Object.fromEntries(leaves.map(([id, name]) => [id, member(id, name)]))});
const ids = (list) => [...list.members.keys()].sort();
const joinedList = {seq: 10, count: 2, next: null, members: [member("a", "ann"), member("b", "bob")]};

test("a diff applied twice, or one the list already reflects, changes nothing", (t) => {
  const {list, send} = room(t);
  send("presence", joinedList);
  send("presence_diff", diff(9, 1, [], [["a", "ann"]]));  // older than the list
  assert.deepEqual(ids(list), ["a", "b"]);
  const d = diff(11, 3, [["c", "carol"], ["b", "robert"]], [["a", "ann"]]);
  send("presence_diff", d);
  send("presence_diff", d);
  send("presence_diff", diff(12, 2, [["c", "carol"]], [["x", "unknown"]]));
  assert.deepEqual(Object.fromEntries([...list.members].map(([id, m]) => [id, m.name])), {b: "robert", c: "carol"});
  assert.equal(list.count, 2);
});

test("diffs that overtake the list wait for it", (t) => {
  const {list, send} = room(t);
  send("presence_diff", diff(11, 2, [], [["a", "ann"]]));
  send("presence_diff", diff(10, 2, [["a", "ann"]]));
  send("presence", joinedList);
  assert.deepEqual(ids(list), ["b"]);
  assert.deepEqual([list.seq, list.count], [11, 2]);
});

test("a page older than the diffs applied is asked for again; a current one is applied", async (t) => {
  const {list, send, ws} = room(t);
  send("presence", {...joinedList, next: "b"});
  send("presence_diff", diff(12, 1, [], [["b", "bob"]]));
  assert.equal(list.more(), true);
  assert.equal(list.more(), false, "one page on its way at a time");
  const ask = ws.lastFrame("members");
  assert.deepEqual(ask.data, {after: "b"});
  ws.reply(ask, {seq: 11, next: null, members: [member("b", "bob")]});
  await Promise.resolve();
  assert.ok(!list.members.has("b"), "no ghost");
  const again = ws.lastFrame("members");
  assert.notEqual(again, ask);
  assert.deepEqual(again.data, {after: "b"});
  ws.reply(again, {seq: 12, next: null, members: [member("z", "zed")]});
  await Promise.resolve();
  assert.ok(list.members.has("z"));
  assert.equal(list.next, null);
});

test("joins left out of a complete list send the client back to the first page", async (t) => {
  const {list, send, ws} = room(t);
  send("presence", joinedList);
  assert.equal(list.next, null);
  send("presence_diff", {...diff(11, 9, [["c", "carol"]]), joins_omitted: 6});
  assert.equal(list.next, "");
  list.more();
  assert.deepEqual(ws.lastFrame("members").data, {after: ""});
  ws.reply(ws.lastFrame("members"), {seq: 11, next: "c", members: [member("0", "zero"), member("a", "ann"), member("c", "carol")]});
  await Promise.resolve();
  assert.equal(list.next, "c");
  list.more();
  ws.reply(ws.lastFrame("members"), {seq: 11, next: null, members: [member("d", "dan")]});
  await Promise.resolve();
  assert.equal(list.next, null);
  assert.deepEqual(ids(list), ["0", "a", "b", "c", "d"]);
});

test("joins left out during a pass start another once it ends", async (t) => {
  const {list, send, ws} = room(t);
  send("presence", {seq: 10, count: 4, next: "b", members: [member("a", "ann"), member("b", "bob")]});
  send("presence_diff", {...diff(11, 8, [["x", "xavier"]]), joins_omitted: 3});
  assert.equal(list.next, "b");  // the pass goes on first
  list.more();
  ws.reply(ws.lastFrame("members"), {seq: 11, next: null, members: [member("c", "carol")]});
  await Promise.resolve();
  assert.equal(list.next, "");  // then starts again
  list.more();
  ws.reply(ws.lastFrame("members"), {seq: 11, next: null, members: [member("a0", "amy")]});
  await Promise.resolve();
  assert.equal(list.next, null);
});

test("a reset starts the list over unless the list is as new", (t) => {
  const {list, send, changes} = room(t);
  const mine = {seq: 10, count: 3, next: null, members: [member("me", "me")]};
  const reset = {seq: 10, count: 2, next: null, joined: 0, left: 900, members: [member("a", "ann")]};
  send("presence", mine);
  send("presence", reset);  // read before the joiner's own page, at the same seq
  assert.deepEqual(ids(list), ["me"]);
  send("presence", {...reset, seq: 11});
  assert.deepEqual([ids(list), list.count, list.seq], [["a"], 2, 11]);
  assert.equal(changes[changes.length - 1].left, 900, "onChange is told it was a reset");
  send("presence", {...mine, seq: 9, members: [member("ghost", "gone")]});
  assert.deepEqual(ids(list), ["a"]);
});

test("the reset overtook the joiner's own page: the page, at the same seq, wins", (t) => {
  const {list, send} = room(t);
  send("presence", {seq: 10, count: 2, next: null, joined: 0, left: 900, members: [member("a", "ann")]});
  send("presence", {seq: 10, count: 3, next: null, members: [member("me", "me")]});
  assert.deepEqual(ids(list), ["me"]);
});

test("a rejoin starts over: the next presence is taken whatever its seq, and a page asked before is dropped", async (t) => {
  const {list, send, ws, channel} = room(t);
  send("presence", {...joinedList, seq: 50, next: "b"});
  list.more();
  channel.rejoin();
  ws.answerJoin(ws.lastFrame("join"), {response: {}});
  send("presence", {seq: 7, count: 1, next: null, members: [member("me", "me")]});  // another store's seq
  assert.deepEqual([ids(list), list.seq], [["me"], 7]);
  ws.reply(ws.lastFrame("members"), {seq: 7, next: null, members: [member("old", "page")]});
  await Promise.resolve();
  assert.ok(!list.members.has("old"));
});
