// One topic on the socket (docs/protocol.md, Channels): join, pushes and their replies, the
// server's pushes to `on(event)` handlers; rejoined after every reconnect.
//
// Lifecycle (`state`): "closed" -> join() -> "joining" -> reply ok -> "joined"; the connection
// lost -> "joining" again (rejoined once the socket is live); a refused join or a `close` push ->
// "closed" (`onClose` handlers hear why). A refused join is retried only when the server says when
// (`retry_after`, a rate limit) or asks for it (`"rejoin": true`).
//
// A topic with history (`resume: true`): each publication carries an `offset`; see offsets.js. The
// publications the server sends before the join's reply (what was missed, or recent history) are
// held until the reply, which says whether they continue what this channel had (`recovered`) or
// start over (`reason`: too_far_behind, unknown_since): then `onReset` handlers run first, so the
// page clears what it shows, and the publications follow in order. `onJoin` handlers run after them,
// on every join and rejoin, with the channel's reply. A `resync` push (the worker lost its broker
// for longer than it can catch up) rejoins from the watermark too.
import {disconnectedError, ReplyError, timeoutError} from "./errors.js";
import {Offsets} from "./offsets.js";
import {Outbox} from "./outbox.js";

export class Channel {
  constructor(socket, topic, options = {}) {
    this.socket = socket;
    this.topic = topic;
    this.params = options.params || {};  // an object, or a function giving one at each (re)join
    this.state = "closed";
    this.wanted = false;  // join() was called and neither leave() nor the server ended it since
    this.handlers = new Map();  // event -> [handler]
    this.lifecycle = {join: [], reset: [], close: []};
    this.held = [];  // pushes of the server that came before the join's reply
    this.waiting = [];  // pushes of the page made before the channel was joined: sent once it is
    this.joinRequest = null;  // {since} of the join on its way
    this.firstJoin = null;  // the promise join() returns
    this.retryTimer = null;
    this.offsets = options.resume ? new Offsets(socket.settings.holeTimeout, () => this.rejoin()) : null;
    this.outbox = options.outbox ? new Outbox(this, options.outboxMaxAge || socket.settings.outboxMaxAge) : null;
  }

  // Join once, rejoin after every reconnect; the promise settles with the first join's reply:
  // resolves with the channel's response, rejects with a ReplyError.
  join() {
    if (this.firstJoin && this.wanted) return this.firstJoin;
    this.wanted = true;
    this.firstJoin = new Promise((resolve, reject) => { this.settleFirstJoin = {resolve, reject}; });
    this.firstJoin.catch(() => {});  // a page that does not wait for it hears of a refusal through onClose
    this.sendJoin();
    return this.firstJoin;
  }

  // No more pushes of this topic; resolves once the server confirmed (or at once when not joined).
  leave() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    const wasJoined = this.state === "joined" || this.state === "joining";
    this.stopped("closed");
    for (const push of this.waiting.splice(0)) push.fail(new ReplyError({code: "not_joined", detail: "left"}));
    if (!wasJoined) return Promise.resolve({});
    return this.request("leave", {}, this.socket.settings.pushTimeout).catch(() => ({}));
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
    return () => this.handlers.set(event, this.handlers.get(event).filter((other) => other !== handler));
  }

  onJoin(handler) { return this.listen("join", handler); }
  onReset(handler) { return this.listen("reset", handler); }
  onClose(handler) { return this.listen("close", handler); }

  // Push an event; the promise resolves with the reply's response or rejects with a ReplyError
  // (its code: the server's, "timeout" or "disconnected"). Before the channel is joined it waits
  // (up to the timeout) and goes once it is.
  push(event, data = {}, {timeout = this.socket.settings.pushTimeout} = {}) {
    if (!this.wanted) return Promise.reject(new ReplyError({code: "not_joined", detail: `join ${this.topic} first`}));
    if (this.state === "joined") return this.request(event, data, timeout);
    return new Promise((resolve, reject) => {
      const push = {
        go: () => { clearTimeout(push.timer); this.request(event, data, timeout).then(resolve, reject); },
        fail: (error) => { clearTimeout(push.timer); reject(error); },
      };
      push.timer = setTimeout(() => {
        this.waiting = this.waiting.filter((other) => other !== push);
        reject(timeoutError());
      }, timeout);
      this.waiting.push(push);
    });
  }

  // Outbox channels: keep `data` until the server answered (outbox.js). The entry (with its nonce),
  // or null when the outbox is full.
  send(event, data = {}) {
    if (!this.outbox) throw new Error(`${this.topic} has no outbox: socket.channel(topic, {outbox: true})`);
    return this.outbox.add(event, data);
  }

  pending() { return this.outbox ? this.outbox.list() : []; }

  onOutbox(handler) {
    if (!this.outbox) throw new Error(`${this.topic} has no outbox`);
    return this.outbox.on(handler);
  }

  // --- used by the socket and the outbox

  request(event, data, timeout) {
    return new Promise((resolve, reject) => {
      const timer = timeout ? setTimeout(() => reject(timeoutError()), timeout) : null;
      const sent = this.sendFrame(event, data, (reply) => {
        clearTimeout(timer);
        if (reply.status === "ok") resolve(reply.response);
        else reject(new ReplyError(reply.response));
      });
      if (!sent) {
        clearTimeout(timer);
        reject(disconnectedError());
      }
    });
  }

  sendFrame(event, data, onReply) {
    return this.socket.pushFrame(this.topic, event, data, onReply);
  }

  // The socket is live (again): join if wanted.
  connected() {
    if (this.wanted && this.state !== "joined") this.sendJoin();
  }

  // The connection is gone: what was joined waits for the next one.
  disconnected() {
    if (this.offsets) this.offsets.stop();
    if (this.outbox) this.outbox.pause();
    this.held = [];
    this.joinRequest = null;
    if (this.wanted) this.state = "joining";
  }

  sendJoin() {
    clearTimeout(this.retryTimer);
    this.state = "joining";
    this.held = [];
    if (this.outbox) this.outbox.pause();
    if (this.socket.status !== "live") return;  // connected() joins
    const params = typeof this.params === "function" ? this.params() : {...this.params};
    if (this.outbox) params.client = this.socket.clientId;  // who resends: the server recognises our nonces
    const payload = {params};
    const since = this.offsets ? this.offsets.watermark : null;
    if (since !== null) payload.since = since;
    const request = this.joinRequest = {since};
    this.sendFrame("join", payload, (reply) => {
      if (this.joinRequest === request) this.joinAnswered(request, reply);
    });
  }

  // Rejoin on this connection from the watermark (a hole stayed open): leave, then join again.
  rejoin() {
    if (this.state !== "joined") return;
    this.sendFrame("leave", {}, () => {});
    this.sendJoin();
  }

  joinAnswered(request, reply) {
    this.joinRequest = null;
    const held = this.held;
    this.held = [];
    if (reply.status !== "ok") return this.refused(reply.response || {});
    const answer = reply;  // {response: the channel's, offset, recovered, reason}
    if (this.offsets) {
      if (request.since !== null && answer.recovered === false) {  // what follows is recent history, afresh
        this.offsets.reset();
        this.emitLifecycle("reset", answer.reason || "unknown_since");
      }
    }
    this.state = "joined";
    for (const [event, data, offset] of held) this.deliver(event, data, offset);
    if (this.offsets) this.offsets.joined(answer.offset);
    this.emitLifecycle("join", answer.response);
    if (this.settleFirstJoin) {
      this.settleFirstJoin.resolve(answer.response);
      this.settleFirstJoin = null;
    }
    for (const push of this.waiting.splice(0)) push.go();
    if (this.outbox) this.outbox.resume();
  }

  refused(error) {
    const retry = typeof error.retry_after === "number" || error.rejoin === true;
    if (retry && this.wanted) {
      this.stopped("joining");
      // When the server says; else spread over the reconnect window (full jitter), as a crowd would be.
      const delay = typeof error.retry_after === "number" ? error.retry_after * 1000
        : Math.random() * this.socket.settings.reconnectWindow;
      this.retryTimer = setTimeout(() => this.sendJoin(), delay);
      return;
    }
    this.end(error);
  }

  // The server ended this topic (a refused join, or its `close` push without rejoin).
  end(error) {
    this.wanted = false;
    this.stopped("closed");
    for (const push of this.waiting.splice(0)) push.fail(new ReplyError(error));
    if (this.settleFirstJoin) {
      this.settleFirstJoin.reject(new ReplyError(error));
      this.settleFirstJoin = null;
    }
    this.emitLifecycle("close", error);
  }

  stopped(state) {
    this.state = state;
    this.held = [];
    this.joinRequest = null;
    if (this.offsets) this.offsets.stop();
    if (this.outbox) this.outbox.pause();
  }

  // A push of the server on this topic.
  receive(event, data, offset) {
    if (event === "close" && this.state !== "closed") return this.closedByServer(data || {});
    if (this.state === "joining" && this.joinRequest) {
      this.held.push([event, data, offset]);  // before the join's reply: history, delivered after it
      return;
    }
    if (this.state !== "joined") return;  // left, or a push of a join that is over
    if (event === "resync" && this.offsets) return this.rejoin();  // the server may have missed some for us
    this.deliver(event, data, offset);
  }

  closedByServer(data) {
    if (data.rejoin === false || !this.wanted) return this.end(data);
    this.refused({...data, rejoin: true});
  }

  deliver(event, data, offset) {
    if (this.offsets && Number.isInteger(offset) && !this.offsets.accept(offset)) return;  // delivered already
    for (const handler of this.handlers.get(event) || []) handler(data, {offset, event});
  }

  listen(kind, handler) {
    this.lifecycle[kind].push(handler);
    return () => { this.lifecycle[kind] = this.lifecycle[kind].filter((other) => other !== handler); };
  }

  emitLifecycle(kind, value) {
    for (const handler of this.lifecycle[kind]) handler(value);
  }
}
