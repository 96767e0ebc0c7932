// The client against a real websocket worker (gunicorn, gevent, Redis) that the test starts through
// scripts/live_worker.py with the repository's Python ($PYTHON, else ../../.venv/bin/python).
// Node 20: `node --experimental-websocket` gives the global WebSocket the client uses.
import assert from "node:assert/strict";
import {spawn} from "node:child_process";
import {existsSync} from "node:fs";
import {createInterface} from "node:readline";
import {after, before, test} from "node:test";
import {fileURLToPath} from "node:url";
import {PresenceList, Socket} from "../src/index.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const PYTHON = process.env.PYTHON || `${ROOT}.venv/bin/python`;
const WAIT = 15000;  // ms: the longest any step may take
let server, lines, info;

before(async () => {
  assert.ok(existsSync(PYTHON), `no Python at ${PYTHON}: set PYTHON (make test does)`);
  assert.equal(typeof WebSocket, "function", "run node with --experimental-websocket");
  server = spawn(PYTHON, ["scripts/live_worker.py"], {cwd: ROOT, stdio: ["pipe", "pipe", "inherit"]});
  lines = createInterface({input: server.stdout})[Symbol.asyncIterator]();
  info = JSON.parse((await within(lines.next(), 60000, "the worker to start")).value);
});

after(() => server && server.stdin.end());

// Ask the harness (post, stop, start) and wait for its answer.
async function harness(command) {
  server.stdin.write(command + "\n");
  return JSON.parse((await within(lines.next(), WAIT, command)).value);
}

function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${what}`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// Resolves when `check()` is true, checked on every call of the returned `poke` and every 20 ms.
function until(check, what, ms = WAIT) {
  return within(new Promise((resolve) => {
    const timer = setInterval(() => { if (check()) { clearInterval(timer); resolve(); } }, 20);
  }), ms, what);
}

function socket(options = {}) {
  const made = new Socket(info.socket, {storage: null, heartbeatInterval: 1000, heartbeatTimeout: 3000,
                                        reconnectWindow: 500, ...options});
  made.connect();
  return made;
}

test("clock: the join's reply is the latest tick, then time pushes come", {timeout: WAIT}, async (t) => {
  const ws = socket();
  t.after(() => ws.disconnect());
  const clock = ws.channel("clock");
  const ticks = [];
  clock.on("time", (data) => ticks.push(data.tick));
  const latest = await within(clock.join(), WAIT, "the clock's join");
  assert.equal(typeof latest, "object");
  await until(() => ticks.length >= 2, "two ticks");
  assert.ok(ticks[1] > ticks[0]);
});

test("chat: a message sent through the outbox is acknowledged with its id; the room's copy has it and no nonce",
     {timeout: WAIT}, async (t) => {
  const ws = socket();
  t.after(() => ws.disconnect());
  const room = ws.channel("chat:lobby", {params: {name: "node"}, resume: true, outbox: true});
  const got = [];
  const acks = [];
  room.on("message", (data, meta) => got.push({data, offset: meta.offset}));
  room.onOutbox((change) => acks.push(change));
  const me = await within(room.join(), WAIT, "the lobby's join");
  assert.equal(me.name, "node");
  const entry = room.send("message", {text: "hello from node"});
  await until(() => acks.length === 1 && got.some(({data}) => data.text === "hello from node"), "the ack and the copy");
  assert.equal(acks[0].kind, "ack");
  assert.equal(acks[0].entry.nonce, entry.nonce);
  const copy = got.find(({data}) => data.text === "hello from node");
  assert.equal(copy.data.id, acks[0].response.id);
  assert.equal(copy.offset, copy.data.id);
  assert.equal("nonce" in copy.data, false, "a broadcast never shows another's nonce");
  assert.deepEqual(room.pending(), []);
});

test("resume: the worker restarts (1001); what was posted meanwhile arrives once each, in order", {timeout: 4 * WAIT}, async (t) => {
  const ws = socket();
  t.after(() => ws.disconnect());
  const room = ws.channel("chat:resume", {resume: true});
  const offsets = [];
  const statuses = [];
  room.on("message", (data, meta) => offsets.push(meta.offset));
  ws.onStatus((status) => statuses.push(status));
  await harness("post resume before");  // the room exists: a guest may join it
  await within(room.join(), WAIT, "the join");
  const first = offsets.at(-1);
  await harness("stop");
  await until(() => ws.status !== "live", "the socket to notice");
  const posted = [];
  for (const text of ["one", "two", "three"]) posted.push((await harness(`post resume ${text}`)).id);
  await harness("start");
  await until(() => offsets.length >= 4, "the missed messages", 2 * WAIT);
  posted.push((await harness("post resume after")).id);
  await until(() => offsets.includes(posted.at(-1)), "a live one after");
  assert.deepEqual(offsets, [first, ...posted]);
  assert.ok(statuses.includes("reconnecting"), statuses.join());
});

test("a token in the subprotocol: the user's own topic joins; another user's is refused, the socket stays",
     {timeout: WAIT}, async (t) => {
  const ws = socket({token: info.token});
  t.after(() => ws.disconnect());
  assert.deepEqual(await within(ws.channel(`user:${info.user.id}`).join(), WAIT, "the user topic"), {});
  await assert.rejects(ws.channel(`user:${info.user.id + 1}`).join(), {code: "forbidden"});
  assert.equal(ws.status, "live");
  await within(ws.channel("clock").join(), WAIT, "another topic on the same socket");
});

test("without a token the user's topic is refused; with a forged one the socket is closed 4401 and stays closed",
     {timeout: WAIT}, async (t) => {
  const guest = socket();
  t.after(() => guest.disconnect());
  await assert.rejects(guest.channel(`user:${info.user.id}`).join(), {code: "forbidden"});
  const forged = socket({token: info.token.slice(0, -2) + "xx"});
  t.after(() => forged.disconnect());
  await until(() => forged.status === "closed", "the 4401 close");
  let info4401 = null;
  forged.onStatus((status, closeInfo) => { info4401 = closeInfo; });
  assert.equal(info4401.code, 4401);
});

test("presence: the joiner is counted and listed, and a second member's join reaches the list", {timeout: WAIT}, async (t) => {
  await harness("post people hello");
  const one = socket(), two = socket();
  t.after(() => { one.disconnect(); two.disconnect(); });
  const room = one.channel("chat:people", {params: {name: "one"}});
  const list = new PresenceList(room);
  await within(room.join(), WAIT, "one's join");
  await until(() => list.count === 1 && [...list.members.values()].some((m) => m.name === "one"), "one listed");
  await within(two.channel("chat:people", {params: {name: "two"}}).join(), WAIT, "two's join");
  await until(() => list.count === 2 && [...list.members.values()].some((m) => m.name === "two"), "two listed");
});
