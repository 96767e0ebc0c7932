// The chat page. Text from the server is only ever set with textContent: never parsed as HTML.
// Your own messages go through the socket's outbox (client.js): shown at once as pending, normal once
// acknowledged, with an error and an Edit button if refused; the room's copy then takes their place.
(function () {
  "use strict";
  var script = document.currentScript;
  var byId = function (id) { return document.getElementById(id); };
  var messages = byId("messages"), status = byId("status"), error = byId("error"), memberList = byId("members");
  var memberCount = byId("member-count"), moreMembers = byId("more-members");
  var nameInput = byId("name"), colorInput = byId("color"), textInput = byId("text");
  var NICK_SETTLE = 1000;  // ms: a name and a colour changed within this are sent as one edit, one notice

  nameInput.value = localStorage.getItem("chat.name") || "";
  colorInput.value = localStorage.getItem("chat.color") || colorInput.value;

  var socket = new RealtimeSocket(script.dataset.url, {
    params: function () {
      var params = {color: colorInput.value};
      if (nameInput.value.trim()) params.name = nameInput.value.trim();
      return params;
    },
    outboxMaxAge: Number(script.dataset.outboxMaxAge)
  });

  var me = {id: null, name: null, color: null};  // as the server last told us (welcome) or we told it (nick)
  var shown = {};  // member id -> {name, color} the list shows (to tell what a diff changed)

  // Scrolled to the newest message, unless the reader scrolled up to read older ones.
  function nearBottom() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  }

  function changing(change, follow) {
    follow = follow || nearBottom();
    change();
    if (follow) messages.scrollTop = messages.scrollHeight;
  }

  // Your messages waiting for their id stay last; everything else goes before them.
  function firstOwnWaiting() {
    return messages.querySelector('[data-state="pending"], [data-state="failed"]');
  }

  // Message ids are the order of record: one that two workers delivered out of order, or that came
  // after a hole was filled on resuming, goes in its place.
  function insert(item, id) {
    var before = firstOwnWaiting();
    if (id !== undefined) {
      for (var node = before ? before.previousElementSibling : messages.lastElementChild; node; node = node.previousElementSibling) {
        if (!node.dataset.id) continue;
        if (Number(node.dataset.id) < id) break;
        before = node;
      }
    }
    messages.insertBefore(item, before);
  }

  function notice(text) {
    var item = document.createElement("li");
    item.className = "notice";
    item.textContent = text;
    changing(function () { insert(item); });
  }

  function span(className, text, color) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    if (color) element.style.color = color;
    return element;
  }

  // A message line: time (local), name, text. `data` is a `message` event's, or {name, color, text} of a pending one.
  function messageItem(data, state) {
    var item = document.createElement("li");
    item.className = "message";
    item.dataset.testid = "message";
    item.dataset.state = state;
    if (data.id !== undefined) item.dataset.id = data.id;
    if (data.nonce) item.dataset.nonce = data.nonce;
    var time = document.createElement("time");
    time.className = "time";
    if (data.ts) {
      var at = new Date(data.ts);
      time.dateTime = data.ts;
      time.textContent = at.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
      time.title = at.toLocaleString();
    } else {
      time.textContent = "sending";
    }
    item.appendChild(time);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("name", data.name, data.color));
    if (data.user) {  // posted by a logged-in account: the server's mark, whatever the name says
      var mark = span("account", data.user === data.name ? "\u2713" : "\u2713 " + data.user);
      mark.title = "logged in as " + data.user;
      mark.dataset.testid = "account";
      item.appendChild(mark);
    }
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("text", data.text));
    return item;
  }

  function ownItem(nonce) {
    return nonce ? messages.querySelector('[data-nonce="' + CSS.escape(nonce) + '"]') : null;
  }

  function showPending(nonce, text) {
    var item = messageItem({nonce: nonce, name: me.name || nameInput.value.trim(), color: me.color || colorInput.value,
                            text: text}, "pending");
    changing(function () { messages.appendChild(item); }, true);  // last, after those still waiting
  }

  function send(text) {
    var nonce = socket.send("message", {text: text}, {reliable: true});
    if (nonce === null) {
      error.textContent = "Too many messages are waiting to be sent: wait until the connection is back.";
      return false;
    }
    showPending(nonce, text);
    return true;
  }

  // Not sent in time: say why, and offer to send it again (as a new message: it was not stored).
  // Refused by the server: sending the same text again would be refused again, so offer to edit it.
  function showFailed(item, detail, refused) {
    item.dataset.state = "failed";
    item.querySelector(".time").textContent = "not sent";
    var why = span("failure", " " + detail + " ");
    why.dataset.testid = "send-error";
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = refused ? "Edit" : "Retry";
    button.dataset.testid = refused ? "edit" : "retry";
    button.addEventListener("click", function () {
      var text = item.querySelector(".text").textContent;
      item.remove();
      if (!refused) return send(text);
      textInput.value = text;
      textInput.focus();
    });
    item.appendChild(why);
    item.appendChild(button);
  }

  socket.outbox().forEach(function (entry) {  // sent before a reload, not yet acknowledged
    if (entry.event === "message") showPending(entry.nonce, entry.data.text);
  });

  socket.onStatus(function (value) { status.textContent = value; });
  socket.on("welcome", function (data) {
    me = {id: data.id, name: data.name, color: data.color};
    if (!nameInput.value.trim() && document.activeElement !== nameInput) nameInput.value = data.name;
    remember();
  });
  socket.on("message", function (data) {
    var item = messageItem(data, "stored");
    var copy = ownItem(data.nonce) || messages.querySelector('[data-id="' + data.id + '"]');
    changing(function () {
      if (copy) copy.remove();  // our pending (or acknowledged) copy: the room's takes its place
      insert(item, data.id);
    });
  });
  socket.on("ack", function (data) {
    if (error.dataset.code === "slow_down") error.textContent = error.dataset.code = "";  // it went through
    var item = ownItem(data.nonce);
    if (!item || item.dataset.state !== "pending") return;  // the room's copy came first
    item.dataset.state = "sent";
    item.dataset.id = data.id;
    item.querySelector(".time").textContent = "sent";
    changing(function () { item.remove(); insert(item, data.id); });
  });
  socket.on("unsent", function (entry) {
    var item = ownItem(entry.nonce);
    if (item) showFailed(item, "Not sent: the connection was gone for too long.");
  });
  socket.on("resync", function (data) {
    if (data.reason === "broker_reconnected") return;  // the client reconnects and resumes by itself
    var waiting = Array.from(messages.querySelectorAll('[data-state="pending"], [data-state="failed"]'));
    messages.textContent = "";  // what follows is recent history, afresh
    waiting.forEach(function (item) { messages.appendChild(item); });
    notice("Too much was missed to catch up: showing recent messages.");
  });
  // The member count and list: a first page on every (re)connect, then one diff per worker and
  // window (PresenceList applies them by id and in order); "more" asks for the next page.
  var people = new PresenceList(socket, function (list, diff) {
    if (diff) noticeChanges(diff);  // first: it tells a change from what is shown so far
    showMembers();
  });

  function showMembers() {
    memberCount.textContent = people.count;
    memberList.textContent = "";
    var listed = Array.from(people.members.values());
    shown = {};
    listed.sort(function (a, b) { return a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1; })
      .forEach(function (member) {
        shown[member.id] = {name: member.name, color: member.color};
        var item = document.createElement("li");
        item.dataset.testid = "member";
        item.appendChild(span("name", member.name + (member.id === me.id ? " (you)" : ""), member.color));
        memberList.appendChild(item);
      });
    moreMembers.hidden = people.next === null;
  }

  // What one member's entry in a diff changed, in words (null: nothing to tell).
  function change(before, member) {
    if (!before) return member.name + " joined";
    var renamed = before.name !== member.name, recoloured = before.color !== member.color;
    if (renamed && recoloured) return before.name + " is now " + member.name + ", in a new colour";
    if (renamed) return before.name + " is now " + member.name;
    if (recoloured) return member.name + " changed colour";
    return null;
  }

  // A line per joiner, leaver or changed name or colour in a small diff; a summary for a crowd.
  function noticeChanges(diff) {
    if ("left" in diff) {  // a reset after many leaves: only the numbers
      notice(diff.joined + " joined, " + diff.left + " left");
      return;
    }
    var joins = Object.keys(diff.joins).map(function (id) { return diff.joins[id]; });
    var leaves = Object.keys(diff.leaves).map(function (id) { return diff.leaves[id]; });
    var joined = joins.length + (diff.joins_omitted || 0);  // a crowd's diff lists only some joiners
    if (joined + leaves.length > 5) {
      notice(joined + " joined, " + leaves.length + " left");
      return;
    }
    joins.forEach(function (member) {
      var text = change(shown[member.id], member);
      if (text) notice(text);
    });
    leaves.forEach(function (member) { notice(member.name + " left"); });
  }

  socket.on("error", function (data) {
    var item = ownItem(data.nonce);
    if (item && typeof data.retry_after === "number") {  // refused for now: the outbox sends it again then
      error.textContent = data.detail;
      error.dataset.code = data.code;
    }
    else if (item) showFailed(item, data.detail, true);
    else if (data.code === "rate_limited" && socket.outbox().length) {  // the outbox sends it again
      error.textContent = "Too many messages at once: yours are sent again in a moment.";
    } else error.textContent = data.detail;
  });

  function remember() {
    localStorage.setItem("chat.name", nameInput.value.trim());
    localStorage.setItem("chat.color", colorInput.value);
  }

  // A name and a colour changed together are one edit: sent once, announced once.
  var nickTimer = null;
  function changeNick(now) {
    clearTimeout(nickTimer);
    nickTimer = null;
    if (!now) {
      nickTimer = setTimeout(function () { changeNick(true); }, NICK_SETTLE);
      return;
    }
    var name = nameInput.value.trim(), color = colorInput.value;
    if (!name || (name === me.name && color === me.color)) return;
    remember();
    error.textContent = "";
    if (socket.send("nick", {name: name, color: color})) me = {id: me.id, name: name, color: color};
  }

  moreMembers.addEventListener("click", function () { people.more(); });
  nameInput.addEventListener("change", function () { changeNick(false); });
  colorInput.addEventListener("change", function () { changeNick(false); });
  byId("nick-form").addEventListener("submit", function (event) { event.preventDefault(); changeNick(true); });
  byId("send-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = textInput.value.trim();
    if (!text) return;
    error.textContent = "";
    if (nickTimer !== null) changeNick(true);  // a name just changed goes first: the message is sent under it
    if (send(text)) textInput.value = "";
  });
})();
