// A channel's outbox (channel option `outbox: true`): pushes that must reach the server once, in
// order, whatever happens to the connection or the tab (docs/protocol.md, the browser client).
// Each entry gets a random `nonce` in its data; the server stores a nonce once per sender (the
// join's `client`, or the account), so sending it again is safe. One is in flight at a time, oldest
// first; the next goes once the server answered:
//   - reply ok: stored (`ack`); the response says how (the chat's `{"id": 42}`).
//   - reply error `rate_limited` (or the socket's own rate_limited error): kept, sent again after
//     `retry_after` seconds (1 s without one), reported as `retry`.
//   - reply error `delivery_degraded`: stored, but not delivered live: settled as `ack`.
//   - any other error: refused, never sent again (`refused`: sending it again would be refused again).
//   - no answer within heartbeatTimeout on a joined channel, or the connection lost: sent again
//     (after each rejoin, which comes after the missed publications).
// Entries live in sessionStorage under "realtime.outbox:<topic>", so they survive a reload of the
// tab. Bounds: OUTBOX_LIMIT entries and OUTBOX_MAX_BYTES of JSON (add() returns null beyond: tell
// the user); an entry older than maxAge (the server's nonce window) is dropped as `unsent`, since
// sending it again could store it twice.
import {load, randomId, save} from "./storage.js";

export const OUTBOX_LIMIT = 100;
export const OUTBOX_MAX_BYTES = 256 * 1024;  // sessionStorage holds about 5 MB for a whole site
const RETRY_DELAY = 1000;  // ms, when a rate limit does not say when
const RETRYABLE = new Set(["rate_limited"]);
const STORED = new Set(["delivery_degraded"]);

export class Outbox {
  constructor(channel, maxAge) {
    this.channel = channel;
    this.storage = channel.socket.storage;
    this.key = "realtime.outbox:" + channel.topic;
    this.maxAge = maxAge;
    const saved = load(this.storage, this.key, []);
    this.entries = (Array.isArray(saved) ? saved : []).filter(isEntry).slice(0, OUTBOX_LIMIT);
    this.handlers = [];
    this.active = false;  // the channel is joined: entries may go
    this.timer = null;
  }

  add(event, data) {
    if (this.entries.length >= OUTBOX_LIMIT) return null;
    const nonce = randomId();
    const entry = {nonce, event, data: {...data, nonce}, queued: Date.now()};
    if (JSON.stringify([...this.entries, entry]).length > OUTBOX_MAX_BYTES) return null;
    this.entries.push(entry);
    this.save();
    if (this.entries.length === 1) this.sendHead();  // nothing in flight: it goes now
    return {...entry};
  }

  list() {
    return this.entries.map((entry) => ({...entry}));
  }

  on(handler) {
    this.handlers.push(handler);
    return () => { this.handlers = this.handlers.filter((other) => other !== handler); };
  }

  // The channel is joined (again): what the server did not answer goes (again), oldest first.
  resume() {
    this.active = true;
    this.sendHead();
  }

  pause() {
    this.active = false;
    this.stopTimer();
  }

  // The socket's messages were dropped for its rate limit, perhaps ours among them.
  rateLimited(retryAfter) {
    if (this.active && this.entries.length) this.retry(this.entries[0], {code: "rate_limited", retry_after: retryAfter});
  }

  sendHead() {
    this.expire();
    this.stopTimer();
    if (!this.active || !this.entries.length) return;
    const entry = this.entries[0];
    if (!this.channel.sendFrame(entry.event, entry.data, (reply) => this.answered(entry, reply))) return;
    this.timer = setTimeout(() => this.sendHead(), this.channel.socket.settings.heartbeatTimeout);
  }

  answered(entry, reply) {
    if (this.entries[0] !== entry) return;  // settled already: an answer to an earlier send of it
    const response = reply.response || {};
    if (reply.status === "ok") return this.settle(entry, {kind: "ack", response});
    if (response.code === "disconnected" || response.code === "not_joined") return;  // the rejoin sends it again
    if (RETRYABLE.has(response.code)) return this.retry(entry, response);
    this.settle(entry, STORED.has(response.code) ? {kind: "ack", response} : {kind: "refused", error: response});
  }

  retry(entry, error) {
    this.stopTimer();
    const delay = typeof error.retry_after === "number" ? error.retry_after * 1000 : RETRY_DELAY;
    this.timer = setTimeout(() => this.sendHead(), delay);
    this.emit({kind: "retry", entry: {...entry}, error});
  }

  // Answered for good: never sent again; the next one goes.
  settle(entry, change) {
    this.entries = this.entries.filter((other) => other !== entry);
    this.save();
    this.emit({...change, entry: {...entry}});
    this.sendHead();
  }

  expire() {
    const now = Date.now();
    const expired = this.entries.filter((entry) => now - entry.queued > this.maxAge);
    if (!expired.length) return;
    this.entries = this.entries.filter((entry) => !expired.includes(entry));
    this.save();
    for (const entry of expired) this.emit({kind: "unsent", entry: {...entry}});
  }

  stopTimer() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  save() {
    save(this.storage, this.key, this.entries.length ? this.entries : null);
  }

  emit(change) {
    for (const handler of this.handlers) handler(change);
  }
}

function isEntry(entry) {
  return entry && typeof entry.nonce === "string" && typeof entry.event === "string" &&
    entry.data && typeof entry.data === "object" && typeof entry.queued === "number";
}
