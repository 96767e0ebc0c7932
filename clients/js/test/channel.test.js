// Channels with no server: joins, replies, resume by offsets, and the server ending a topic.
import assert from "node:assert/strict";
import {mock, test} from "node:test";
import {FakeWebSocket} from "./fakes.js";
import {fakeTime, joined, liveSocket, pushOf, SETTINGS} from "./helpers.js";

test("join sends the params (a function is asked again at each join) and resolves with the channel's reply", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  let name = "ann";
  const channel = socket.channel("chat:lobby", {params: () => ({name})});
  const joining = channel.join();
  const frame = ws.lastFrame("join", "chat:lobby");
  assert.deepEqual(frame.data, {params: {name: "ann"}});
  ws.answerJoin(frame, {response: {id: "m1", name: "ann"}, offset: 0, recovered: true});
  assert.deepEqual(await joining, {id: "m1", name: "ann"});
  assert.equal(channel.state, "joined");
  name = "annie";
  ws.serverClose(1006);
  mock.timers.tick(SETTINGS.reconnectWindow);
  FakeWebSocket.last().open();
  assert.deepEqual(FakeWebSocket.last().lastFrame("join", "chat:lobby").data, {params: {name: "annie"}});
});

test("a refused join rejects with the server's error, stays closed, and is not retried", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const channel = socket.channel("user:9");
  const closes = [];
  channel.onClose((error) => closes.push(error.code));
  const joining = channel.join();
  ws.reply(ws.lastFrame("join"), {code: "forbidden", detail: "not yours"}, "error");
  await assert.rejects(joining, {name: "ReplyError", code: "forbidden", detail: "not yours"});
  assert.equal(channel.state, "closed");
  assert.deepEqual(closes, ["forbidden"]);
  ws.serverClose(1006);
  mock.timers.tick(SETTINGS.reconnectWindow);
  FakeWebSocket.last().open();
  assert.equal(FakeWebSocket.last().frames("join").length, 0, "not rejoined after a reconnect");
});

test("a join refused for a rate limit is tried again when the server says", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const channel = socket.channel("chat:busy");
  const joining = channel.join();
  ws.reply(ws.lastFrame("join"), {code: "rate_limited", detail: "slow down", retry_after: 2}, "error");
  mock.timers.tick(1999);
  assert.equal(ws.frames("join").length, 1);
  mock.timers.tick(1);
  assert.equal(ws.frames("join").length, 2);
  ws.answerJoin(ws.lastFrame("join"), {response: {ok: 1}});
  assert.deepEqual(await joining, {ok: 1});
});

test("pushes made before the join's reply go once it is joined; a push without reply rejects with timeout", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const channel = socket.channel("chat:lobby");
  channel.join();
  const early = channel.push("members", {after: ""});
  assert.equal(ws.frames("members").length, 0);
  ws.answerJoin(ws.lastFrame("join"), {response: {}});
  const frame = ws.lastFrame("members");
  assert.deepEqual(frame.data, {after: ""});
  ws.reply(frame, {members: []});
  assert.deepEqual(await early, {members: []});
  const lost = channel.push("nick", {name: "x"});
  mock.timers.tick(SETTINGS.pushTimeout ?? 10000);
  await assert.rejects(lost, {code: "timeout"});
  await assert.rejects(socket.channel("not:joined").push("x"), {code: "not_joined"});
});

test("a push whose connection is lost before its reply rejects with disconnected", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const {channel} = joined(socket, ws, "chat:lobby");
  const push = channel.push("nick", {name: "x"});
  ws.serverClose(1006);
  await assert.rejects(push, {code: "disconnected"});
});

test("leave: no more pushes of the topic reach the page, and it is not rejoined", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const {channel} = joined(socket, ws, "clock");
  const ticks = [];
  channel.on("time", (data) => ticks.push(data.tick));
  ws.push(pushOf("clock", "time", {tick: 1}));
  const leaving = channel.leave();
  ws.push(pushOf("clock", "time", {tick: 2}));  // on its way before the server read the leave
  ws.reply(ws.lastFrame("leave", "clock"));
  await leaving;
  assert.deepEqual(ticks, [1]);
  ws.serverClose(1006);
  mock.timers.tick(SETTINGS.reconnectWindow);
  FakeWebSocket.last().open();
  assert.equal(FakeWebSocket.last().frames("join").length, 0);
});

test("the server ends a topic with close rejoin false: closed, told, not rejoined; with rejoin true it rejoins", (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const {channel: ended} = joined(socket, ws, "chat:private");
  const {channel: again} = joined(socket, ws, "jobs:all");
  const told = [];
  ended.onClose((data) => told.push(data.code));
  ws.push(pushOf("chat:private", "close", {code: "forbidden", detail: "logged out", rejoin: false}));
  ws.push(pushOf("jobs:all", "close", {code: "moved", detail: "again", rejoin: true}));
  assert.deepEqual([ended.state, told], ["closed", ["forbidden"]]);
  mock.timers.tick(SETTINGS.reconnectWindow);
  assert.equal(ws.frames("join", "jobs:all").length, 2, "rejoined within the reconnect window");
  assert.equal(ws.frames("join", "chat:private").length, 1);
});

// --- resume by offsets

function chat(t, answer = {response: {}, offset: 10, recovered: true}) {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const channel = socket.channel("chat:lobby", {resume: true});
  const got = [];
  const resets = [];
  channel.on("message", (data, meta) => got.push(meta.offset));
  channel.onReset((reason) => resets.push(reason));
  channel.join();
  ws.answerJoin(ws.lastFrame("join"), answer);
  return {socket, ws, channel, got, resets};
}

function comeBack(ws) {
  ws.serverClose(1001, "server shutting down; reconnect_window=1");
  mock.timers.tick(1000);
  const next = FakeWebSocket.last();
  next.open();
  return next;
}

test("after a reconnect it rejoins with since = its watermark; missed ones come in order, repeats are dropped", (t) => {
  const {ws, got, resets} = chat(t);
  ws.push(pushOf("chat:lobby", "message", {}, 11));
  ws.push(pushOf("chat:lobby", "message", {}, 12));
  ws.push(pushOf("chat:lobby", "message", {}, 12));  // a repeat: never shown twice
  const next = comeBack(ws);
  const join = next.lastFrame("join", "chat:lobby");
  assert.equal(join.data.since, 12);
  for (const offset of [12, 13, 14]) next.push(pushOf("chat:lobby", "message", {}, offset));  // held until the reply
  assert.deepEqual(got, [11, 12]);
  next.answerJoin(join, {response: {}, offset: 14, recovered: true});
  next.push(pushOf("chat:lobby", "message", {}, 15));
  assert.deepEqual(got, [11, 12, 13, 14, 15]);
  assert.deepEqual(resets, []);
});

test("not recovered (too far behind): onReset runs before the recent history, which then shows in full", (t) => {
  const {ws, got, resets, channel} = chat(t);
  const order = [];
  channel.onReset(() => order.push("reset"));
  channel.on("message", (data, meta) => order.push(meta.offset));
  ws.push(pushOf("chat:lobby", "message", {}, 11));
  const next = comeBack(ws);
  for (const offset of [1060, 1061]) next.push(pushOf("chat:lobby", "message", {}, offset));
  next.answerJoin(next.lastFrame("join"), {response: {}, offset: 1061, recovered: false, reason: "too_far_behind"});
  assert.deepEqual(order, [11, "reset", 1060, 1061]);
  assert.deepEqual(resets, ["too_far_behind"]);
  assert.deepEqual(got, [11, 1060, 1061]);
  assert.equal(channel.offsets.watermark, 1061);
});

test("a hole: the later one shows at once; when it fills in time nothing else happens", (t) => {
  const {ws, got} = chat(t);
  ws.push(pushOf("chat:lobby", "message", {}, 12));  // 11 missing
  assert.deepEqual(got, [12]);
  mock.timers.tick(SETTINGS.holeTimeout - 1);
  ws.push(pushOf("chat:lobby", "message", {}, 11));
  mock.timers.tick(SETTINGS.holeTimeout * 2);
  assert.deepEqual(got, [12, 11]);
  assert.equal(ws.frames("leave").length, 0);
});

test("a hole still open after holeTimeout: that channel alone rejoins from its watermark, on the same socket", (t) => {
  const {socket, ws, got, channel} = chat(t);
  const {channel: other} = joined(socket, ws, "clock");
  ws.push(pushOf("chat:lobby", "message", {}, 12));
  mock.timers.tick(SETTINGS.holeTimeout);
  assert.equal(FakeWebSocket.last(), ws, "the socket stays");
  assert.equal(ws.frames("leave", "chat:lobby").length, 1);
  const rejoin = ws.lastFrame("join", "chat:lobby");
  assert.equal(rejoin.data.since, 10);
  ws.push(pushOf("chat:lobby", "message", {}, 11));
  ws.push(pushOf("chat:lobby", "message", {}, 12));
  ws.answerJoin(rejoin, {response: {}, offset: 12, recovered: true});
  assert.deepEqual(got, [12, 11]);
  assert.equal(channel.offsets.watermark, 12);
  assert.equal(other.state, "joined");
  assert.equal(ws.frames("join", "clock").length, 1);
});

test("an answer to an earlier join (one replaced by a rejoin) is ignored", (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const channel = socket.channel("chat:lobby", {resume: true});
  const joins = [];
  channel.onJoin((response) => joins.push(response.n));
  channel.join();
  const first = ws.lastFrame("join");
  ws.serverClose(1006);
  mock.timers.tick(SETTINGS.reconnectWindow);
  const next = FakeWebSocket.last();
  next.open();
  next.answerJoin(first, {response: {n: 1}});  // cannot happen on a new connection, but must not count
  next.answerJoin(next.lastFrame("join"), {response: {n: 2}});
  assert.deepEqual(joins, [2]);
});

test("a resync push rejoins that topic from its watermark", (t) => {
  const {ws} = chat(t);
  ws.push(pushOf("chat:lobby", "message", {}, 11));
  ws.push(pushOf("chat:lobby", "resync", {reason: "broker_reconnected"}));
  assert.equal(ws.frames("leave", "chat:lobby").length, 1);
  assert.equal(ws.lastFrame("join", "chat:lobby").data.since, 11);
});
