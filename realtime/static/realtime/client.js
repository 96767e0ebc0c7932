// RealtimeSocket: the browser side of the {"event": ..., "data": ...} protocol (docs/protocol.md).
// Load it with {% load websockets %}{% realtime_client %}, which passes the heartbeat and hole settings.
//
//   var socket = new RealtimeSocket(url, {params: function () { return {name: "ann"}; }});
//   socket.on("message", function (data) { ... });
//   socket.onStatus(function (status) { ... });  // connecting, live, reconnecting, offline, closed
//   socket.send("message", {text: "hi"});
//   var nonce = socket.send("message", {text: "hi"}, {reliable: true});  // kept in the outbox until acked
//
// Reconnect: after any lost connection, with exponential backoff and full jitter; not after socket.close()
// nor after the server closed with 1000 (it ended the session on purpose, e.g. after `goodbye`).
// After a lost connection or a server close that means "come back" (1001, 1012, a 503 at the
// handshake) the first delay is random over reconnectWindow ms (CLIENT_RECONNECT_WINDOW), or over
// the window the server put in the close reason ("... reconnect_window=<s>"): a crowd spreads out.
// Resume: `message` ids are consecutive on one socket (1, 2, 3, ... in a chat room), so the client
// keeps a watermark, lastId: every id up to it has been delivered. It reconnects with
// ?since=<watermark> and never delivers one message id twice.
//   - A message ahead of a hole (an id still missing below it) is delivered at once and kept in
//     `seen`; when the hole fills, the watermark moves past both.
//   - A hole still open after holeTimeout ms (a message that was stored but never published, or
//     was in flight when a connection dropped) makes it reconnect: the server resends everything
//     after the watermark, and what was already delivered is dropped.
//   - `welcome` comes after the history and before any live message; its `last_id` says the
//     server sent everything up to it: the watermark moves there (the starting point when there
//     was none: first connect, or a resync too_far_behind/unknown_since, which starts over).
// Heartbeat: browsers hide WebSocket ping frames, so every heartbeatInterval ms it sends
// {"event": "ping"} (the server answers `pong`). If nothing at all arrives within heartbeatTimeout ms
// after a ping, or a connection does not open within heartbeatTimeout ms, the connection is taken
// for dead even if TCP says nothing (a frozen server, a dead NAT entry): dropped, then reconnected.
// So a dead connection is noticed within heartbeatInterval + heartbeatTimeout.
// Outbox (sending without loss): send(event, data, {reliable: true}) gives the data a `nonce` (random,
// returned) and keeps the event until the server answers `ack` {nonce, id} (stored) or an `error` that
// names the nonce (refused: it is not sent again; unless the error says `retry_after`, in seconds: over
// a budget, it stays first in line and goes again then). One is in flight at a time, oldest first, so they
// are stored in the order sent even when one is lost on the way; the next goes when the server
// answered. After every `welcome` (that is, after the resume backlog) the oldest unanswered one is
// sent again: the server stores a nonce once, so a message that did arrive before the connection died
// is acknowledged again, not stored twice. Without an answer within heartbeatTimeout on a live
// connection (the transport dropped it for the rate limit) it is sent again, a second after a
// `rate_limited` error. The server knows the sender by `client`, an id sent with every
// connect and kept with the outbox in sessionStorage: both survive a reload of the page in this tab.
// Bounds: at most OUTBOX_LIMIT events (send returns null beyond: tell the user), and none older than
// outboxMaxAge ms (the server's nonce window; an older one is dropped and reported as `unsent`).
// socket.outbox() lists the unacknowledged events; the page hears of each change through on("ack"),
// on("error") (data.nonce), on("unsent").
(function (global) {
  "use strict";

  var script = document.currentScript;
  var DEFAULTS = {
    minDelay: 500,
    maxDelay: 15000,
    heartbeatInterval: Number(script && script.dataset.heartbeatInterval) || 20000,
    heartbeatTimeout: Number(script && script.dataset.heartbeatTimeout) || 10000,
    holeTimeout: Number(script && script.dataset.holeTimeout) || 3000,
    reconnectWindow: Number(script && script.dataset.reconnectWindow) || 5000
  };
  var OUTBOX_LIMIT = 100;  // events: 100 chat messages of 2,000 characters take about 0.4 MB of sessionStorage (5 MB a site)
  var OUTBOX_MAX_AGE = 24 * 3600 * 1000;  // ms: the chat's CHAT_NONCE_WINDOW, unless the page says otherwise
  var RATE_LIMITED_RESEND = 1000;  // ms
  // After these resyncs the server sends recent history afresh: forget what was seen.
  var START_OVER = {too_far_behind: true, unknown_since: true};

  function RealtimeSocket(url, options) {
    options = options || {};
    this.url = url;
    this.params = options.params || function () { return {}; };
    ["minDelay", "maxDelay", "heartbeatInterval", "heartbeatTimeout", "holeTimeout", "reconnectWindow"].forEach(function (name) {
      this[name] = options[name] || DEFAULTS[name];
    }, this);
    this.outboxMaxAge = options.outboxMaxAge || OUTBOX_MAX_AGE;
    this.storageKey = "realtime.outbox:" + new URL(url, global.location.href).pathname;
    this.clientId = storedClientId();
    this.pending = loadOutbox(this.storageKey);  // [{event, data, nonce, queued}], oldest first
    this.welcomed = false;  // this connection's `welcome` came: the backlog is in, sending may start
    this.handlers = {};
    this.statusHandlers = [];
    this.lastId = null;  // the watermark: every message id up to it was delivered (null: none known yet)
    this.seen = new Set();  // ids delivered above the watermark (ahead of a hole, or history before `welcome`)
    this.attempt = 0;
    this.wasLive = false;
    this.stopped = false;
    this.status = null;
    this.ws = null;
    this.timers = {};
    var self = this;
    global.addEventListener("online", function () { if (self.status === "offline") self.connect(); });
    global.addEventListener("offline", function () { self.drop(0); });
    this.connect();
  }

  RealtimeSocket.prototype.on = function (event, handler) {
    (this.handlers[event] = this.handlers[event] || []).push(handler);
    return this;
  };

  RealtimeSocket.prototype.onStatus = function (handler) {
    this.statusHandlers.push(handler);
    if (this.status) handler(this.status);
    return this;
  };

  // Send now, or (reliable) keep it until acknowledged: returns its nonce, null when the outbox is full.
  RealtimeSocket.prototype.send = function (event, data, options) {
    if (options && options.reliable) return this.queue(event, data);
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({event: event, data: data || {}}));
    return true;
  };

  RealtimeSocket.prototype.queue = function (event, data) {
    if (this.pending.length >= OUTBOX_LIMIT) return null;
    var nonce = randomId();
    var entry = {event: event, data: Object.assign({}, data, {nonce: nonce}), nonce: nonce, queued: Date.now()};
    this.pending.push(entry);
    this.saveOutbox();
    if (this.pending.length === 1) this.resend();  // nothing in flight: it goes now (or after the next `welcome`)
    return nonce;
  };

  // The unacknowledged events, oldest first (copies).
  RealtimeSocket.prototype.outbox = function () {
    return this.pending.map(function (entry) { return Object.assign({}, entry); });
  };

  // Send the oldest unanswered event (again), once the connection is welcomed; drop (and report)
  // those past outboxMaxAge. Without an answer it is sent again after heartbeatTimeout.
  RealtimeSocket.prototype.resend = function () {
    var self = this, now = Date.now();
    var expired = this.pending.filter(function (entry) { return now - entry.queued > self.outboxMaxAge; });
    if (expired.length) {
      this.pending = this.pending.filter(function (entry) { return expired.indexOf(entry) < 0; });
      this.saveOutbox();
      expired.forEach(function (entry) { self.emit("unsent", entry); });
    }
    if (!this.welcomed || !this.pending.length) return;
    this.send(this.pending[0].event, this.pending[0].data);
    this.resendAfter(this.heartbeatTimeout);
  };

  RealtimeSocket.prototype.resendAfter = function (ms) {
    var self = this;
    clearTimeout(this.timers.resend);
    this.timers.resend = setTimeout(function () { self.timers.resend = null; self.resend(); }, ms);
  };

  // Acknowledged (stored) or refused: either way it is not sent again, and the next one goes.
  RealtimeSocket.prototype.settle = function (nonce) {
    var head = this.pending[0];
    this.pending = this.pending.filter(function (entry) { return entry.nonce !== nonce; });
    this.saveOutbox();
    if (head && head.nonce === nonce) {
      clearTimeout(this.timers.resend);
      this.timers.resend = null;
      this.resend();
    }
  };

  // Refused for now (over a budget): it stays first in line and is sent again after `ms`.
  RealtimeSocket.prototype.later = function (nonce, ms) {
    if (this.pending.length && this.pending[0].nonce === nonce) this.resendAfter(ms);
  };

  RealtimeSocket.prototype.saveOutbox = function () {
    try {
      if (this.pending.length) global.sessionStorage.setItem(this.storageKey, JSON.stringify(this.pending));
      else global.sessionStorage.removeItem(this.storageKey);
    } catch (e) { /* storage full or disabled: the outbox still holds them for this page's life */ }
  };

  function loadOutbox(key) {
    try {
      var saved = JSON.parse(global.sessionStorage.getItem(key) || "[]");
      return Array.isArray(saved) ? saved.slice(0, OUTBOX_LIMIT) : [];
    } catch (e) {
      return [];
    }
  }

  // This tab's id as a sender: with it the server tells a resend of ours from another client's message.
  function storedClientId() {
    try {
      var id = global.sessionStorage.getItem("realtime.client");
      if (!id) global.sessionStorage.setItem("realtime.client", id = randomId());
      return id;
    } catch (e) {
      return randomId();  // no storage: resends are still recognised while this page lives
    }
  }

  function randomId() {
    return Array.from(global.crypto.getRandomValues(new Uint8Array(16)), function (byte) {
      return (byte + 256).toString(16).slice(1);
    }).join("");
  }

  // Drop the connection and open a new one soon (e.g. after changing params).
  RealtimeSocket.prototype.reconnect = function () {
    this.attempt = 0;
    this.drop(0);
  };

  // Stop for good: no reconnecting.
  RealtimeSocket.prototype.close = function () {
    this.stopped = true;
    clearTimeout(this.timers.retry);
    var ws = this.detach();
    if (ws) ws.close(1000, "bye");
    this.setStatus("closed");
  };

  RealtimeSocket.prototype.setStatus = function (status) {
    if (status === this.status) return;
    this.status = status;
    this.statusHandlers.forEach(function (handler) { handler(status); });
  };

  RealtimeSocket.prototype.emit = function (event, data) {
    (this.handlers[event] || []).forEach(function (handler) { handler(data); });
  };

  RealtimeSocket.prototype.buildUrl = function () {
    var url = new URL(this.url, global.location.href);
    url.protocol = url.protocol.replace(/^http/, "ws");
    var params = this.params();
    Object.keys(params).forEach(function (key) { url.searchParams.set(key, params[key]); });
    if (this.lastId !== null) url.searchParams.set("since", this.lastId);
    url.searchParams.set("client", this.clientId);
    return url.toString();
  };

  RealtimeSocket.prototype.connect = function () {
    var self = this;
    if (this.stopped || this.ws) return;
    clearTimeout(this.timers.retry);
    this.setStatus(this.wasLive ? "reconnecting" : "connecting");
    var ws = this.ws = new WebSocket(this.buildUrl());
    this.timers.open = setTimeout(function () { self.drop(self.reconnectWindow); }, this.heartbeatTimeout);
    ws.onopen = function () {
      clearTimeout(self.timers.open);
      self.wasLive = true;
      self.setStatus("live");
      self.timers.heartbeat = setInterval(function () { self.ping(); }, self.heartbeatInterval);
    };
    ws.onmessage = function (event) {
      clearTimeout(self.timers.pong);  // the connection is alive
      self.timers.pong = null;
      self.attempt = 0;  // the server is really there: the next reconnect starts fast again
      self.receive(event.data);
    };
    ws.onclose = function (event) {
      self.detach();
      if (event.code === 1000) {  // the server ended the session on purpose
        self.stopped = true;
        self.setStatus("closed");
      } else {  // "come back" (1001, 1012, ...) or lost
        self.scheduleReconnect(self.windowOf(event));
      }
    };
  };

  // The window (ms) to spread a reconnect over after this close: the server's, if its reason gives one.
  RealtimeSocket.prototype.windowOf = function (closeEvent) {
    var told = /reconnect_window=(\d+(?:\.\d+)?)/.exec(closeEvent.reason || "");
    return told ? Number(told[1]) * 1000 : this.reconnectWindow;
  };

  RealtimeSocket.prototype.receive = function (text) {
    var message;
    try { message = JSON.parse(text); } catch (e) { return; }
    var event = message.event, data = message.data || {};
    if (event === "message" && typeof data.id === "number") {
      if ((this.lastId !== null && data.id <= this.lastId) || this.seen.has(data.id)) return;  // already delivered
      this.seen.add(data.id);
      this.advance();
    } else if (event === "welcome" && typeof data.last_id === "number") {
      // The server sent everything up to last_id: nothing is missing below it.
      if (this.lastId === null || data.last_id > this.lastId) this.lastId = data.last_id;
      this.advance();
    } else if (event === "resync" && START_OVER[data.reason]) {
      this.seen.clear();
      this.lastId = null;
      this.advance();
    } else if ((event === "ack" || event === "error") && typeof data.nonce === "string") {
      if (event === "error" && typeof data.retry_after === "number") this.later(data.nonce, data.retry_after * 1000);
      else this.settle(data.nonce);
    } else if (event === "error" && data.code === "rate_limited" && this.pending.length) {
      this.resendAfter(RATE_LIMITED_RESEND);  // perhaps ours that was dropped: no need to wait longer
    }
    this.emit(event, data);
    if (event === "welcome") {  // the backlog is in: what the page sees has every message stored so far
      this.welcomed = true;
      this.resend();
    }
    if (event === "resync" && data.reason === "broker_reconnected") {
      this.reconnect();  // the server may have missed messages for us: resume from lastId
    }
  };

  // Move the watermark over the ids that are in and keep `seen` to the ids above it. A hole below
  // them gets holeTimeout ms (from when the watermark last moved) to fill, then the client resumes.
  RealtimeSocket.prototype.advance = function () {
    var self = this, before = this.lastId;
    if (this.lastId !== null) {
      while (this.seen.has(this.lastId + 1)) this.lastId += 1;
      this.seen.forEach(function (id) { if (id <= self.lastId) self.seen.delete(id); });
    }
    var hole = this.lastId !== null && this.seen.size > 0;
    if (!hole || this.lastId !== before) this.stopHoleTimer();
    if (hole && !this.timers.hole) this.timers.hole = setTimeout(function () { self.reconnect(); }, this.holeTimeout);
  };

  RealtimeSocket.prototype.stopHoleTimer = function () {
    clearTimeout(this.timers.hole);
    this.timers.hole = null;
  };

  // Heartbeat: if nothing at all arrives within heartbeatTimeout after a ping, the connection is dead.
  // Any message stops the countdown; the first ping after it starts a new one.
  RealtimeSocket.prototype.ping = function () {
    var self = this;
    if (!this.send("ping", {}) || this.timers.pong) return;
    this.timers.pong = setTimeout(function () { self.drop(self.reconnectWindow); }, this.heartbeatTimeout);
  };

  // Give up on the current connection without waiting for a closing handshake (a hung TCP
  // connection would never finish one), then reconnect (spread over `window` ms: see scheduleReconnect).
  RealtimeSocket.prototype.drop = function (window) {
    var ws = this.detach();
    if (!ws) return;
    try { ws.close(4000, "reconnecting"); } catch (e) { /* closing a dead socket may throw: it is gone anyway */ }
    this.scheduleReconnect(window);
  };

  RealtimeSocket.prototype.detach = function () {
    var ws = this.ws;
    clearTimeout(this.timers.open);
    clearTimeout(this.timers.pong);
    clearInterval(this.timers.heartbeat);
    this.stopHoleTimer();  // the next connection resumes from the watermark: that fills any hole
    clearTimeout(this.timers.resend);  // the next connection resends after its `welcome`
    this.timers.pong = this.timers.resend = null;
    this.welcomed = false;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    this.ws = null;
    return ws;
  };

  RealtimeSocket.prototype.scheduleReconnect = function (window) {
    var self = this;
    if (this.stopped) return;
    if (global.navigator.onLine === false) {
      this.setStatus("offline");  // the "online" event reconnects
      return;
    }
    this.setStatus("reconnecting");
    // Full jitter: anywhere from 0 to the cap, which doubles with each failed attempt (to maxDelay)
    // and is at least `window` when the connection was lost or the server said "come back": every
    // client of a restarted worker or a network blip then spreads its return over the window.
    var cap = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt));
    var delay = Math.random() * Math.max(cap, window || 0);
    this.attempt += 1;
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(function () { self.connect(); }, delay);
  };

  // A group's member list (docs/protocol.md, Presence), kept from the socket's `presence` (the count
  // and a first page, on every connect), `presence_diff` and `members` events; the same rules as
  // realtime/presence/diff.py's MemberList. Diffs apply in `seq` order and each once (leaves, then
  // joins; a join of a known id replaces it); one that comes before `presence` waits for it.
  // onChange(list, diff) runs after each change; diff is the applied presence_diff's data, a reset
  // `presence`'s (with `joined` and `left` counts), or null (a page).
  // A diff that left joins out (joins_omitted) makes `next` "" (page again from the start), at once
  // or after the pass under way: those joiners may sort anywhere in id order.
  //   var people = new PresenceList(socket, function (list, diff) { list.count; list.members; });
  //   people.more();  // ask for the next page, while list.next is not null
  function PresenceList(socket, onChange) {
    var self = this;
    this.socket = socket;
    this.onChange = onChange || function () {};
    this.seq = null;  // the last diff applied (null: waiting for this connection's `presence`)
    this.count = 0;  // the group's size on every worker
    this.members = new Map();  // id -> {id, name, ...}: the first page, the diffs since, the pages asked for
    this.next = null;  // the cursor of the next page (null: none, or all asked for; "": from the start)
    this.missed = false;  // a diff left joins out behind the cursor of the pass under way
    this.asked = null;  // the cursor of the page asked for and not yet received
    this.early = [];
    socket.on("welcome", function () { self.seq = null; self.early = []; self.asked = null; });
    socket.on("presence", function (data) {
      var reset = "left" in data;  // sent to all after many leaves: the first page after them
      if (self.seq !== null && (data.seq < self.seq || (data.seq === self.seq && reset))) return;  // older
      self.seq = data.seq;
      self.count = data.count;
      self.next = data.next;
      self.missed = false;
      self.asked = null;  // a page still on its way belongs to the list this one replaces
      self.members = new Map(data.members.map(function (member) { return [member.id, member]; }));
      var early = self.early.sort(function (a, b) { return a.seq - b.seq; });
      self.early = [];
      self.onChange(self, reset ? data : null);
      early.forEach(function (diff) { self.applyDiff(diff); });
    });
    socket.on("presence_diff", function (data) {
      if (self.seq === null) self.early.push(data);
      else self.applyDiff(data);
    });
    socket.on("members", function (data) {
      if (self.asked === null) return;  // asked for before a reset: that pass is over
      if (data.seq < self.seq) {  // older than the diffs applied: a member it lists may be gone
        socket.send("members", {after: self.asked});
        return;
      }
      self.asked = null;
      self.next = data.next;
      if (self.next === null && self.missed) { self.next = ""; self.missed = false; }
      data.members.forEach(function (member) { self.members.set(member.id, member); });
      self.onChange(self, null);
    });
  }

  PresenceList.prototype.applyDiff = function (diff) {
    if (diff.seq <= this.seq) return;  // already reflected
    var members = this.members;
    this.seq = diff.seq;
    this.count = diff.count;
    Object.keys(diff.leaves).forEach(function (id) { members.delete(id); });
    Object.keys(diff.joins).forEach(function (id) { members.set(id, diff.joins[id]); });
    if (diff.joins_omitted) {
      if (this.next) this.missed = true;  // a pass is under way: finish it, then start again
      else this.next = "";
    }
    this.onChange(this, diff);
  };

  PresenceList.prototype.more = function () {
    if (this.next === null || this.asked !== null) return false;
    this.asked = this.next;
    return this.socket.send("members", {after: this.next});
  };

  global.RealtimeSocket = RealtimeSocket;
  global.PresenceList = PresenceList;
})(window);
