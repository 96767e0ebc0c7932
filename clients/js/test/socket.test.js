// The socket with no server: a WebSocket the test drives, timers under its hand.
import assert from "node:assert/strict";
import {mock, test} from "node:test";
import {base64url, pageSettings, Socket} from "../src/index.js";
import {FakeWebSocket, MemoryStorage} from "./fakes.js";
import {fakeTime, joined, liveSocket, SETTINGS} from "./helpers.js";

test("it offers realtime.v1, and a token only in the subprotocol, never in the URL", (t) => {
  fakeTime(t);
  const {ws} = liveSocket({token: "signed:token/with+odd=chars", params: {v: "2"}});
  assert.deepEqual(ws.protocols, ["realtime.v1", "realtime.bearer." + base64url("signed:token/with+odd=chars")]);
  assert.match(ws.protocols[1], /^realtime\.bearer\.[A-Za-z0-9_-]+$/);  // base64url without padding
  assert.equal(ws.url, "ws://example.test/socket/?v=2");
  assert.equal(Buffer.from(ws.protocols[1].slice("realtime.bearer.".length), "base64url").toString(),
               "signed:token/with+odd=chars");
});

test("an http URL becomes ws, https wss", (t) => {
  fakeTime(t);
  for (const [url, expected] of [["http://a.test/socket/", "ws://a.test/socket/"], ["https://a.test/socket/", "wss://a.test/socket/"]]) {
    const socket = new Socket(url, {WebSocket: FakeWebSocket, storage: null}).connect();
    assert.equal(FakeWebSocket.last().url, expected);
    socket.disconnect();
  }
});

test("statuses: connecting, live, then reconnecting after a loss, closed after disconnect()", (t) => {
  fakeTime(t);
  const seen = [];
  const socket = new Socket("ws://example.test/socket/", {WebSocket: FakeWebSocket, storage: null, ...SETTINGS});
  socket.onStatus((status) => seen.push(status));
  socket.connect();
  FakeWebSocket.last().open();
  FakeWebSocket.last().serverClose(1006);
  mock.timers.tick(SETTINGS.reconnectWindow);
  FakeWebSocket.last().open();
  socket.disconnect();
  assert.deepEqual(seen, ["connecting", "live", "reconnecting", "live", "closed"]);
  assert.deepEqual(FakeWebSocket.last().closedWith, {code: 1000, reason: "bye"});
});

test("the heartbeat goes every interval; silence after it drops the connection and a new one opens", (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  mock.timers.tick(SETTINGS.heartbeatInterval);
  const beat = ws.lastFrame("heartbeat", "realtime");
  assert.ok(beat.ref, "a heartbeat asks for a reply");
  ws.reply(beat);  // answered: alive
  mock.timers.tick(SETTINGS.heartbeatInterval);
  assert.equal(ws.frames("heartbeat").length, 2);
  mock.timers.tick(SETTINGS.heartbeatTimeout);  // the second one gets nothing back
  assert.deepEqual(ws.closedWith, {code: 4000, reason: "reconnecting"});
  assert.equal(socket.status, "reconnecting");
  mock.timers.tick(SETTINGS.reconnectWindow);
  assert.notEqual(FakeWebSocket.last(), ws, "a new connection");
});

test("a connection that does not open within the heartbeat timeout is given up and tried again", (t) => {
  fakeTime(t);
  new Socket("ws://example.test/socket/", {WebSocket: FakeWebSocket, storage: null, ...SETTINGS}).connect();
  const hung = FakeWebSocket.last();
  mock.timers.tick(SETTINGS.heartbeatTimeout);
  assert.equal(hung.closedWith.code, 4000);
  mock.timers.tick(SETTINGS.reconnectWindow);
  assert.notEqual(FakeWebSocket.last(), hung);
});

test("full jitter: come-back closes are spread over the server's window, from 0 to its end", (t) => {
  fakeTime(t);
  const delays = [];
  const socket = new Socket("ws://example.test/socket/", {WebSocket: FakeWebSocket, storage: null, ...SETTINGS});
  assert.equal(socket.windowOf("server shutting down; reconnect_window=2.5"), 2500);
  assert.equal(socket.windowOf(""), SETTINGS.reconnectWindow);
  const realSetTimeout = globalThis.setTimeout;
  t.after(() => { globalThis.setTimeout = realSetTimeout; });
  socket.stopped = false;
  globalThis.setTimeout = (fn, ms) => { delays.push(ms); return 0; };
  for (let i = 0; i < 300; i++) {
    socket.attempt = 0;
    socket.scheduleReconnect(socket.windowOf("server shutting down; reconnect_window=4"));
  }
  globalThis.setTimeout = realSetTimeout;
  assert.ok(delays.every((delay) => delay >= 0 && delay <= 4000), `${Math.min(...delays)} ${Math.max(...delays)}`);
  // Spread over the whole window (a miss of either tenth by 300 uniform draws: about 1e-14).
  assert.ok(Math.min(...delays) < 400 && Math.max(...delays) > 3600);
});

test("failed attempts back off: the cap doubles from minDelay up to maxDelay", (t) => {
  fakeTime(t);
  const socket = new Socket("ws://example.test/socket/", {WebSocket: FakeWebSocket, storage: null, ...SETTINGS,
                                                           minDelay: 500, maxDelay: 15000});
  t.mock.method(Math, "random", () => 1);  // the top of each range
  const delays = [];
  t.mock.method(globalThis, "setTimeout", (fn, ms) => { delays.push(ms); return 0; });
  socket.stopped = false;
  for (let i = 0; i < 7; i++) socket.scheduleReconnect(0);
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
});

test("1000 (done) and 4403 (this user's sessions ended) stop it; 4401 without getToken too", (t) => {
  fakeTime(t);
  for (const code of [1000, 4403, 4401]) {
    const {socket, ws} = liveSocket();
    const told = [];
    socket.onStatus((status, info) => told.push([status, info && info.code]));
    ws.serverClose(code, "why");
    mock.timers.tick(60000);
    assert.equal(socket.status, "closed", `after ${code}`);
    assert.deepEqual(told[told.length - 1], ["closed", code]);
    assert.equal(FakeWebSocket.last(), ws, `no new connection after ${code}`);
  }
});

test("4401 with getToken: a new token is asked for and the socket comes back with it", async (t) => {
  fakeTime(t);
  let issued = 0;
  const socket = new Socket("ws://example.test/socket/", {WebSocket: FakeWebSocket, storage: null, ...SETTINGS,
                                                           getToken: async () => `token-${++issued}`});
  socket.connect();
  await Promise.resolve();
  const first = FakeWebSocket.last();
  assert.equal(first.protocols[1], "realtime.bearer." + base64url("token-1"));
  first.open();
  first.serverClose(4401, "unauthorized: token expired");
  mock.timers.tick(SETTINGS.reconnectWindow);
  await Promise.resolve();
  const second = FakeWebSocket.last();
  assert.notEqual(second, first);
  assert.equal(second.protocols[1], "realtime.bearer." + base64url("token-2"));
});

test("offline: it waits for the browser to be online again, then reconnects at once", (t) => {
  fakeTime(t);
  const listeners = {};
  globalThis.navigator = {onLine: true};
  globalThis.addEventListener = (name, fn) => { listeners[name] = fn; };
  t.after(() => { delete globalThis.navigator; delete globalThis.addEventListener; });
  const {socket, ws} = liveSocket();
  globalThis.navigator.onLine = false;
  listeners.offline();
  assert.equal(socket.status, "offline");
  assert.equal(ws.closedWith.code, 4000);
  mock.timers.tick(60000);
  assert.equal(FakeWebSocket.last(), ws, "no attempt while offline");
  globalThis.navigator.onLine = true;
  listeners.online();
  assert.notEqual(FakeWebSocket.last(), ws);
  assert.equal(socket.status, "reconnecting");
});

test("the server's `error` pushes reach onError; frames that are not JSON objects are ignored", (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const errors = [];
  socket.onError((error) => errors.push(error.code));
  ws.push("not json");
  ws.push("[1, 2]");
  ws.push({topic: "realtime", event: "error", data: {code: "invalid_frame", detail: "no topic"}});
  assert.deepEqual(errors, ["invalid_frame"]);
});

test("authenticate() sends the token on the realtime topic and resolves with the reply", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const answer = socket.authenticate("tok");
  const frame = ws.lastFrame("auth", "realtime");
  assert.deepEqual(frame.data, {token: "tok"});
  ws.reply(frame, {user: {id: 7}});
  assert.deepEqual(await answer, {user: {id: 7}});
  assert.equal(socket.token, "tok");  // the next connect offers it
  const refused = socket.authenticate("bad");
  ws.reply(ws.lastFrame("auth"), {code: "unauthorized", detail: "bad token"}, "error");
  await assert.rejects(refused, {code: "unauthorized"});
  assert.equal(socket.token, "tok");  // not the refused one, which the next connect would offer in vain
});

test("settings come from the page's JSON element; options win over them", () => {
  const element = {textContent: JSON.stringify({heartbeatInterval: 2500, holeTimeout: 750})};
  globalThis.document = {getElementById: (id) => (id === "realtime-settings" ? element : null)};
  try {
    assert.deepEqual(pageSettings(), {heartbeatInterval: 2500, holeTimeout: 750});
    const socket = new Socket("ws://x.test/socket/", {WebSocket: FakeWebSocket, storage: null, holeTimeout: 100});
    assert.equal(socket.settings.heartbeatInterval, 2500);
    assert.equal(socket.settings.holeTimeout, 100);
    assert.equal(socket.settings.heartbeatTimeout, 10000);  // the default
  } finally {
    delete globalThis.document;
  }
});

test("one channel per topic, and the tab's client id is kept in storage", () => {
  const storage = new MemoryStorage();
  const one = new Socket("ws://x.test/", {WebSocket: FakeWebSocket, storage});
  const two = new Socket("ws://x.test/", {WebSocket: FakeWebSocket, storage});
  assert.equal(one.clientId, two.clientId);
  assert.match(one.clientId, /^[0-9a-f]{32}$/);
  assert.equal(one.channel("a"), one.channel("a"));
});

test("a push on an unjoined topic the server sends anyway is ignored; replies find their push by ref", async (t) => {
  fakeTime(t);
  const {socket, ws} = liveSocket();
  const {channel} = joined(socket, ws, "room:a");
  const got = [];
  channel.on("x", (data) => got.push(data));
  ws.push({topic: "room:b", event: "x", data: {n: 1}});
  ws.push({topic: "room:a", event: "x", data: {n: 2}});
  const first = channel.push("one", {});
  const second = channel.push("two", {});
  ws.reply(ws.lastFrame("two"), {n: "two"});
  ws.reply(ws.lastFrame("one"), {n: "one"});
  assert.deepEqual([await first, await second], [{n: "one"}, {n: "two"}]);
  assert.deepEqual(got, [{n: 2}]);
});
