// RealtimeSocket: the browser side of the {"event": ..., "data": ...} protocol (docs/protocol.md).
//
//   var socket = new RealtimeSocket(url, {params: function () { return {name: "ann"}; }});
//   socket.on("message", function (data) { ... });
//   socket.onStatus(function (status) { ... });  // connecting, live, reconnecting, offline
//   socket.send("message", {text: "hi"});
//
// It reconnects by itself with exponential backoff and jitter, resumes with the last message id it
// saw (`since`), and drops any message it has already seen, so nothing shows twice.
(function (global) {
  "use strict";

  function RealtimeSocket(url, options) {
    options = options || {};
    this.url = url;
    this.params = options.params || function () { return {}; };
    this.minDelay = options.minDelay || 500;
    this.maxDelay = options.maxDelay || 15000;
    this.handlers = {};
    this.statusHandlers = [];
    this.lastId = null;
    this.attempt = 0;
    this.stopped = false;
    this.status = null;
    this.connect();
    var self = this;
    global.addEventListener("online", function () { if (self.status === "offline") self.connect(); });
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

  RealtimeSocket.prototype.send = function (event, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({event: event, data: data || {}}));
    return true;
  };

  // Drop the connection and open a new one at once (e.g. after changing params).
  RealtimeSocket.prototype.reconnect = function () {
    this.attempt = 0;
    if (this.ws) this.ws.close(1000, "reconnecting");
  };

  RealtimeSocket.prototype.close = function () {
    this.stopped = true;
    if (this.ws) this.ws.close(1000, "bye");
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
    return url.toString();
  };

  RealtimeSocket.prototype.connect = function () {
    var self = this;
    if (this.stopped) return;
    this.setStatus(this.attempt === 0 && this.lastId === null ? "connecting" : "reconnecting");
    var ws = this.ws = new WebSocket(this.buildUrl());
    ws.onopen = function () {
      self.attempt = 0;
      self.setStatus("live");
    };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      var data = message.data || {};
      if (message.event === "message" && typeof data.id === "number") {
        if (self.lastId !== null && data.id <= self.lastId) return;  // already shown
        self.lastId = data.id;
      }
      if (message.event === "resync" && data.reason === "broker_reconnected") {
        self.reconnect();  // the server may have missed messages for us: resume from lastId
      }
      self.emit(message.event, data);
    };
    ws.onclose = function () {
      if (ws !== self.ws || self.stopped) return;
      self.scheduleReconnect();
    };
  };

  RealtimeSocket.prototype.scheduleReconnect = function () {
    var self = this;
    if (global.navigator.onLine === false) {
      this.setStatus("offline");
      return;
    }
    this.setStatus("reconnecting");
    var delay = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt));
    delay = delay / 2 + Math.random() * delay / 2;  // jitter: not every client at the same moment
    this.attempt += 1;
    setTimeout(function () { self.connect(); }, delay);
  };

  global.RealtimeSocket = RealtimeSocket;
})(window);
