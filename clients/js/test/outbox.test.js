// The outbox with no server: one in flight, kept across reconnects and reloads, settled by replies.
import assert from "node:assert/strict";
import {mock, test} from "node:test";
import {OUTBOX_LIMIT, OUTBOX_MAX_BYTES, Socket} from "../src/index.js";
import {FakeWebSocket, MemoryStorage} from "./fakes.js";
import {fakeTime, liveSocket, SETTINGS} from "./helpers.js";

function room(t, options = {}) {
  fakeTime(t);
  const storage = options.storage || new MemoryStorage();
  const {socket, ws} = liveSocket({storage, outboxMaxAge: options.maxAge || 60000});
  const channel = socket.channel("chat:lobby", {params: {name: "ann"}, outbox: true});
  const changes = [];
  channel.onOutbox((change) => changes.push([change.kind, change.entry.data.text]));
  channel.join();
  return {socket, ws, channel, changes, storage};
}

const joinAnswer = {response: {}, offset: 0, recovered: true};
const texts = (frames) => frames.map((frame) => frame.data.text);

test("its join carries the tab's client id, so the server knows a resend of ours", (t) => {
  const {socket, ws} = room(t);
  assert.deepEqual(ws.lastFrame("join").data.params, {name: "ann", client: socket.clientId});
});

test("one in flight, oldest first; an ack sends the next; each with its own nonce", (t) => {
  const {ws, channel, changes} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  const one = channel.send("message", {text: "one"});
  channel.send("message", {text: "two"});
  assert.match(one.nonce, /^[0-9a-f]{32}$/);
  assert.deepEqual(ws.lastFrame("message").data, {text: "one", nonce: one.nonce});
  assert.deepEqual(texts(ws.frames("message")), ["one"]);
  ws.reply(ws.lastFrame("message"), {id: 41});
  assert.deepEqual(texts(ws.frames("message")), ["one", "two"]);
  assert.notEqual(ws.lastFrame("message").data.nonce, one.nonce);
  ws.reply(ws.lastFrame("message"), {id: 42});
  assert.deepEqual(changes, [["ack", "one"], ["ack", "two"]]);
  assert.deepEqual(channel.pending(), []);
});

test("kept across a lost connection and sent again, same nonce, only after the rejoin's reply", (t) => {
  const {ws, channel} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  const entry = channel.send("message", {text: "one"});
  ws.serverClose(1006);
  mock.timers.tick(SETTINGS.reconnectWindow);
  const next = FakeWebSocket.last();
  next.open();
  assert.deepEqual(next.frames("message"), [], "not before the missed messages");
  next.answerJoin(next.lastFrame("join"), joinAnswer);
  assert.deepEqual(next.lastFrame("message").data, {text: "one", nonce: entry.nonce});
});

test("no answer within the heartbeat timeout on a live channel: sent again", (t) => {
  const {ws, channel} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  channel.send("message", {text: "one"});
  mock.timers.tick(SETTINGS.heartbeatTimeout);
  assert.deepEqual(texts(ws.frames("message")), ["one", "one"]);
  ws.reply(ws.frames("message")[0], {id: 1});  // the first send's answer, late: settles it once
  ws.reply(ws.frames("message")[1], {id: 1});
  assert.deepEqual(channel.pending(), []);
});

test("refused: reported once, never sent again, and the next one goes", (t) => {
  const {ws, channel, changes} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  channel.send("message", {text: "x".repeat(2001)});
  channel.send("message", {text: "next"});
  ws.reply(ws.lastFrame("message"), {code: "invalid_message", detail: "too long"}, "error");
  assert.deepEqual(changes, [["refused", "x".repeat(2001)]]);
  assert.deepEqual(texts(ws.frames("message")), ["x".repeat(2001), "next"]);
});

test("rate limited: kept pending, reported as retry, sent again after retry_after", (t) => {
  const {ws, channel, changes} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  channel.send("message", {text: "quick"});
  ws.reply(ws.lastFrame("message"), {code: "rate_limited", detail: "slow down", retry_after: 2.5}, "error");
  assert.deepEqual(changes, [["retry", "quick"]]);
  assert.equal(channel.pending().length, 1);
  mock.timers.tick(2499);
  assert.equal(ws.frames("message").length, 1);
  mock.timers.tick(1);
  assert.equal(ws.frames("message").length, 2);
});

test("the socket's own rate_limited error (a frame dropped by the transport) resends a second later", (t) => {
  const {ws, channel} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  channel.send("message", {text: "dropped"});
  ws.push({topic: "realtime", event: "error", data: {code: "rate_limited", detail: "too many"}});
  mock.timers.tick(1000);
  assert.equal(ws.frames("message").length, 2);
});

test("delivery_degraded means stored: settled as ack, not sent again", (t) => {
  const {ws, channel, changes} = room(t);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  channel.send("message", {text: "stored"});
  ws.reply(ws.lastFrame("message"), {code: "delivery_degraded", detail: "Redis is down"}, "error");
  assert.deepEqual(changes, [["ack", "stored"]]);
  assert.deepEqual(channel.pending(), []);
});

test("kept in storage per topic: a new page (a reload) sends what is unanswered after its join", (t) => {
  const storage = new MemoryStorage();
  const {ws, channel} = room(t, {storage});
  const entry = channel.send("message", {text: "typed before the reload"});  // not joined yet: waits
  assert.deepEqual(ws.frames("message"), []);
  assert.ok(storage.getItem("realtime.outbox:chat:lobby").includes("typed before the reload"));
  const reloaded = new Socket("ws://example.test/socket/", {WebSocket: FakeWebSocket, storage, ...SETTINGS});
  const again = reloaded.channel("chat:lobby", {outbox: true});
  assert.deepEqual(again.pending().map((e) => e.nonce), [entry.nonce]);
  reloaded.connect();
  const next = FakeWebSocket.last();
  next.open();
  again.join();
  next.answerJoin(next.lastFrame("join"), joinAnswer);
  assert.deepEqual(next.lastFrame("message").data, {text: "typed before the reload", nonce: entry.nonce});
  next.reply(next.lastFrame("message"), {id: 1});
  assert.equal(storage.getItem("realtime.outbox:chat:lobby"), null);
});

test("older than outboxMaxAge: dropped and reported unsent, never sent", (t) => {
  const {ws, channel, changes} = room(t, {maxAge: 5000});
  channel.send("message", {text: "too late"});
  mock.timers.tick(5001);
  ws.answerJoin(ws.lastFrame("join"), joinAnswer);
  assert.deepEqual(changes, [["unsent", "too late"]]);
  assert.deepEqual(ws.frames("message"), []);
});

test("bounded: at most OUTBOX_LIMIT entries; send returns null beyond", (t) => {
  const {channel} = room(t);
  for (let i = 0; i < OUTBOX_LIMIT; i++) assert.ok(channel.send("message", {text: `m${i}`}));
  assert.equal(channel.send("message", {text: "one too many"}), null);
});

test("bounded in bytes too: big entries fill it before OUTBOX_LIMIT", (t) => {
  const {channel} = room(t);
  let kept = 0;
  while (channel.send("message", {text: "y".repeat(4000)})) kept++;
  assert.equal(kept, Math.floor(OUTBOX_MAX_BYTES / JSON.stringify(channel.pending()[0]).length));
});

test("storage that holds garbage is ignored", (t) => {
  const storage = new MemoryStorage({"realtime.outbox:chat:lobby": '[{"nonce": 5}, "x", null]', "realtime.client": "../../"});
  const {channel, socket} = room(t, {storage});
  assert.deepEqual(channel.pending(), []);
  assert.match(socket.clientId, /^[0-9a-f]{32}$/);
});
