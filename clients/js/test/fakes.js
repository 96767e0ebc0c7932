// Stand-ins for what a browser gives the client, for the tests that need no server: a WebSocket the
// test drives by hand, and a sessionStorage. The tests against a real worker use Node's WebSocket.

export class FakeWebSocket {
  static OPEN = 1;
  static opened = [];  // every socket made, newest last

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];  // frames sent, parsed
    this.closedWith = null;
    this.readyState = 0;
    FakeWebSocket.opened.push(this);
  }

  static last() {
    return FakeWebSocket.opened[FakeWebSocket.opened.length - 1];
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closedWith = {code, reason};
    this.readyState = 3;
  }

  // --- what the server does
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }

  push(frame) {
    this.onmessage && this.onmessage({data: typeof frame === "string" ? frame : JSON.stringify(frame)});
  }

  reply(request, response = {}, status = "ok") {
    this.push({topic: request.topic, event: "reply", ref: request.ref, data: {status, response}});
  }

  // A join's ok reply: the layer's fields (offset, recovered, reason) beside the channel's response.
  answerJoin(request, answer = {response: {}}) {
    this.push({topic: request.topic, event: "reply", ref: request.ref, data: {status: "ok", ...answer}});
  }

  serverClose(code, reason = "") {
    this.readyState = 3;
    this.onclose && this.onclose({code, reason});
  }

  // The frames sent of one event (and topic), oldest first.
  frames(event, topic) {
    return this.sent.filter((frame) => frame.event === event && (topic === undefined || frame.topic === topic));
  }

  lastFrame(event, topic) {
    const frames = this.frames(event, topic);
    return frames[frames.length - 1];
  }
}

export class MemoryStorage {
  constructor(items = {}) {
    this.items = new Map(Object.entries(items));
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    this.items.set(key, String(value));
  }

  removeItem(key) {
    this.items.delete(key);
  }
}
