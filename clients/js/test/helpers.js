import {mock} from "node:test";
import {Socket} from "../src/index.js";
import {FakeWebSocket, MemoryStorage} from "./fakes.js";

export const SETTINGS = {heartbeatInterval: 20000, heartbeatTimeout: 10000, holeTimeout: 3000, reconnectWindow: 5000};

// Timers and the clock under the test's hand (mock.timers.tick(ms)); undone after the test.
export function fakeTime(t) {
  mock.timers.enable({apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000});
  t.after(() => mock.timers.reset());
}

// A socket on a FakeWebSocket, connected and open.
export function liveSocket(options = {}) {
  const socket = new Socket("ws://example.test/socket/", {
    WebSocket: FakeWebSocket, storage: new MemoryStorage(), ...SETTINGS, ...options});
  socket.connect();
  const ws = FakeWebSocket.last();
  ws.open();
  return {socket, ws};
}

// A channel joined on `ws`, the server answering its join with `answer` ({response, offset, ...}).
export function joined(socket, ws, topic, options = {}, answer = {response: {}}) {
  const channel = socket.channel(topic, options);
  const joining = channel.join();
  ws.answerJoin(ws.lastFrame("join", topic), answer);
  return {channel, joining};
}

export function pushOf(topic, event, data, offset) {
  const frame = {topic, event, data};
  if (offset !== undefined) frame.offset = offset;
  return frame;
}
