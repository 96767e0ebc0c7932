// One WebSocket for every topic of the page (docs/protocol.md, Channels; wire protocol realtime.v1).
//
//   const socket = new Socket("/socket/", {getToken, params});
//   socket.onStatus((status) => ...);  // connecting, live, reconnecting, offline, closed
//   const room = socket.channel("chat:lobby", {params: {name: "ann"}, resume: true, outbox: true});
//   room.on("message", (data) => ...);
//   room.join();
//   socket.connect();
//
// Reconnect: after any lost connection, with exponential backoff and full jitter (a random delay
// from 0 to a cap of minDelay doubling to maxDelay); the first after a lost connection or a close
// that means "come back" (1001, 1012, a 503 at the handshake) is spread over the reconnect window,
// or the window the server put in the close reason ("... reconnect_window=<s>"): a crowd spreads
// out. Not after disconnect(), nor after the server closed with 1000 (done) or 4403 (this user's
// sessions were ended); after 4401 (the token is no longer valid) only with getToken, which gives
// a new one. While the browser says it is offline the socket waits for it to be online again.
// Heartbeat: every heartbeatInterval ms a `heartbeat` on the `realtime` topic; when nothing at all
// arrives within heartbeatTimeout ms after it (a reply or anything else), or a connection does not
// open within heartbeatTimeout ms, the connection is taken for dead even if TCP says nothing (a
// frozen server, a dead NAT entry), dropped and opened again: noticed within interval + timeout.
// Every joined channel rejoins after a reconnect (channel.js).
import {Channel} from "./channel.js";
import {disconnectedError, ReplyError} from "./errors.js";
import {CLIENT_DEFAULTS, DEFAULTS, pageSettings} from "./settings.js";
import {defaultStorage, storedClientId} from "./storage.js";

export const PROTOCOL = "realtime.v1";
export const SYSTEM_TOPIC = "realtime";
// Close codes (docs/limits.md): the session is over, or over for this user, or the token expired.
const DONE = 1000, UNAUTHORIZED = 4401, DISCONNECTED = 4403;

export class Socket {
  constructor(url, options = {}) {
    const {token, getToken, params, storage, WebSocket, ...settings} = options;
    this.url = url;
    this.settings = {...DEFAULTS, ...CLIENT_DEFAULTS, ...pageSettings(), ...settings};
    this.token = token || null;
    this.getToken = getToken || null;  // async () => token, asked before each connect
    this.params = params || {};  // the query string of each connect: an object or a function giving one
    this.WebSocket = WebSocket || globalThis.WebSocket;
    this.storage = storage === undefined ? defaultStorage() : storage;
    this.clientId = storedClientId(this.storage);
    this.channels = new Map();  // topic -> Channel
    this.replies = new Map();  // ref -> onReply, for this connection
    this.ref = 0;
    this.status = null;
    this.statusHandlers = [];
    this.errorHandlers = [];
    this.closeInfo = null;  // {code, reason} of the close that ended the socket for good
    this.attempt = 0;
    this.wasLive = false;
    this.stopped = true;
    this.opening = false;
    this.ws = null;
    this.timers = {};
    this.listening = false;
  }

  connect() {
    this.stopped = false;
    this.listenToNetwork();
    this.open();
    return this;
  }

  // Stop for good: no reconnecting (connect() starts again).
  disconnect() {
    this.stopped = true;
    clearTimeout(this.timers.retry);
    const ws = this.detach();
    if (ws) ws.close(DONE, "bye");
    this.setStatus("closed");
  }

  // Drop the connection and open a new one at once (e.g. after logging in).
  reconnect() {
    this.attempt = 0;
    this.drop(0);
  }

  // The channel of this topic (one per topic and socket).
  channel(topic, options) {
    if (!this.channels.has(topic)) this.channels.set(topic, new Channel(this, topic, options));
    return this.channels.get(topic);
  }

  onStatus(handler) {
    this.statusHandlers.push(handler);
    if (this.status) handler(this.status, this.closeInfo);
    return () => { this.statusHandlers = this.statusHandlers.filter((other) => other !== handler); };
  }

  // The server's `error` pushes on the `realtime` topic: {code, detail} (a frame it could not read,
  // a rate limit).
  onError(handler) {
    this.errorHandlers.push(handler);
    return () => { this.errorHandlers = this.errorHandlers.filter((other) => other !== handler); };
  }

  // Change this socket's identity without reconnecting: resolves with the reply's response
  // ({user}), rejects with a ReplyError (`unauthorized`: it stays what it was). The token is kept
  // for later connects only once the server took it: a refused one would be refused again there.
  authenticate(token) {
    return new Promise((resolve, reject) => {
      const sent = this.pushFrame(SYSTEM_TOPIC, "auth", {token}, (reply) => {
        if (reply.status === "ok") {
          this.token = token;
          resolve(reply.response);
        } else {
          reject(new ReplyError(reply.response));
        }
      });
      if (!sent) reject(disconnectedError());
    });
  }

  // --- the connection

  async open() {
    if (this.stopped || this.ws || this.opening) return;
    clearTimeout(this.timers.retry);
    this.opening = true;
    this.setStatus(this.wasLive ? "reconnecting" : "connecting");
    let token = this.token;
    try {
      if (this.getToken) token = this.token = await this.getToken();
    } catch {
      this.opening = false;
      return this.scheduleReconnect(this.settings.reconnectWindow);  // the token server is away: try again
    }
    this.opening = false;
    if (this.stopped || this.ws) return;
    const protocols = [PROTOCOL];
    if (token) protocols.push("realtime.bearer." + base64url(token));  // never in the URL, nor in a log
    const ws = this.ws = new this.WebSocket(this.buildUrl(), protocols);
    this.timers.open = setTimeout(() => this.drop(this.settings.reconnectWindow), this.settings.heartbeatTimeout);
    ws.onopen = () => this.opened();
    ws.onmessage = (event) => {
      clearTimeout(this.timers.pong);  // the connection is alive
      this.timers.pong = null;
      this.attempt = 0;  // the server is really there: the next reconnect starts fast again
      this.receive(event.data);
    };
    ws.onclose = (event) => {
      this.detach();
      this.closed(event.code, event.reason || "");
    };
  }

  opened() {
    clearTimeout(this.timers.open);
    this.wasLive = true;
    this.setStatus("live");
    this.timers.heartbeat = setInterval(() => this.heartbeat(), this.settings.heartbeatInterval);
    for (const channel of this.channels.values()) channel.connected();
  }

  closed(code, reason) {
    if (code === DONE || code === DISCONNECTED || (code === UNAUTHORIZED && !this.getToken)) {
      this.stopped = true;  // over on purpose; or for this user; or with a token nobody can renew
      this.closeInfo = {code, reason};
      this.setStatus("closed");
    } else {  // "come back" (1001, 1012, ...), lost, or 4401 with a new token to get
      this.scheduleReconnect(this.windowOf(reason));
    }
  }

  // The window (ms) to spread a reconnect over after this close: the server's, if its reason gives one.
  windowOf(reason) {
    const told = /reconnect_window=(\d+(?:\.\d+)?)/.exec(reason || "");
    return told ? Number(told[1]) * 1000 : this.settings.reconnectWindow;
  }

  buildUrl() {
    const base = globalThis.location ? globalThis.location.href : undefined;
    const url = new URL(this.url, base);
    url.protocol = url.protocol.replace(/^http/, "ws");
    const params = typeof this.params === "function" ? this.params() : this.params;
    for (const [key, value] of Object.entries(params || {})) url.searchParams.set(key, value);
    return url.toString();
  }

  // --- frames

  // Send a frame; with onReply, a ref is given and onReply gets the reply's data ({status, response}),
  // or {status: "error", response: {code: "disconnected"}} when the connection is lost first.
  pushFrame(topic, event, data, onReply) {
    if (!this.ws || this.status !== "live") return false;
    const frame = {topic, event, data: data || {}};
    if (onReply) {
      frame.ref = String(++this.ref);
      this.replies.set(frame.ref, onReply);
    }
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  receive(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (!frame || typeof frame !== "object" || typeof frame.topic !== "string") return;
    const {topic, event, data, ref, offset} = frame;
    if (event === "reply") {
      const onReply = ref !== undefined && ref !== null ? this.replies.get(String(ref)) : undefined;
      if (onReply) {
        this.replies.delete(String(ref));
        onReply(data && typeof data === "object" ? data : {status: "error", response: {}});
      }
      return;
    }
    if (topic === SYSTEM_TOPIC) {
      if (event === "error") this.serverError(data || {});
      return;
    }
    const channel = this.channels.get(topic);
    if (channel) channel.receive(event, data === undefined ? {} : data, offset);
  }

  serverError(error) {
    if (error.code === "rate_limited") {  // something we sent was dropped: perhaps an outbox entry
      for (const channel of this.channels.values()) if (channel.outbox) channel.outbox.rateLimited(error.retry_after);
    }
    for (const handler of this.errorHandlers) handler(error);
  }

  // Heartbeat: if nothing at all arrives within heartbeatTimeout after it, the connection is dead.
  // Any frame stops the countdown; the first heartbeat after it starts a new one.
  heartbeat() {
    if (!this.pushFrame(SYSTEM_TOPIC, "heartbeat", {}, () => {}) || this.timers.pong) return;
    this.timers.pong = setTimeout(() => this.drop(this.settings.reconnectWindow), this.settings.heartbeatTimeout);
  }

  // Give up on the current connection without waiting for a closing handshake (a hung TCP
  // connection would never finish one), then reconnect, spread over `window` ms.
  drop(window) {
    const ws = this.detach();
    if (!ws) return;
    try { ws.close(4000, "reconnecting"); } catch { /* closing a dead socket may throw: it is gone anyway */ }
    this.scheduleReconnect(window);
  }

  detach() {
    const ws = this.ws;
    for (const name of ["open", "pong"]) clearTimeout(this.timers[name]);
    clearInterval(this.timers.heartbeat);
    this.timers.pong = null;
    this.ws = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    const replies = [...this.replies.values()];
    this.replies.clear();
    for (const channel of this.channels.values()) channel.disconnected();
    const lost = {status: "error", response: {code: "disconnected", detail: "the connection was lost"}};
    for (const onReply of replies) onReply(lost);
    return ws;
  }

  scheduleReconnect(window) {
    if (this.stopped) return;
    if (globalThis.navigator && globalThis.navigator.onLine === false) {
      this.setStatus("offline");  // the "online" event reconnects
      return;
    }
    this.setStatus("reconnecting");
    // Full jitter: anywhere from 0 to the cap, which doubles with each failed attempt (to maxDelay)
    // and is at least `window` when the connection was lost or the server said "come back": every
    // client of a restarted worker or a network blip then spreads its return over the window.
    const cap = Math.min(this.settings.maxDelay, this.settings.minDelay * 2 ** this.attempt);
    const delay = Math.random() * Math.max(cap, window || 0);
    this.attempt += 1;
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.open(), delay);
  }

  listenToNetwork() {
    if (this.listening || typeof globalThis.addEventListener !== "function") return;
    this.listening = true;
    globalThis.addEventListener("online", () => { if (this.status === "offline") this.open(); });
    globalThis.addEventListener("offline", () => this.drop(0));
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    if (status !== "closed") this.closeInfo = null;
    for (const handler of this.statusHandlers) handler(status, this.closeInfo);
  }
}

// A token in a subprotocol: base64url of its UTF-8, without padding.
export function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
