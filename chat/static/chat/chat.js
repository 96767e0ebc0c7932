// The chat page. Text from the server is only ever set with textContent: never parsed as HTML.
(function () {
  "use strict";
  var url = document.currentScript.dataset.url;
  var byId = function (id) { return document.getElementById(id); };
  var messages = byId("messages"), status = byId("status"), error = byId("error"), memberList = byId("members");
  var memberCount = byId("member-count"), moreMembers = byId("more-members");
  var nameInput = byId("name"), colorInput = byId("color"), textInput = byId("text");

  nameInput.value = localStorage.getItem("chat.name") || "";
  colorInput.value = localStorage.getItem("chat.color") || colorInput.value;

  var socket = new RealtimeSocket(url, {
    params: function () {
      var params = {color: colorInput.value};
      if (nameInput.value.trim()) params.name = nameInput.value.trim();
      return params;
    }
  });

  var myId = null;
  var shown = {};  // member id -> the name the list shows (to tell a new name from a join)

  function line(className) {
    var item = document.createElement("li");
    item.className = className;
    messages.appendChild(item);
    item.scrollIntoView({block: "end"});
    return item;
  }

  // Message ids are the order of record: one that two workers delivered out of order, or that came
  // after a hole was filled on resuming, goes in its place.
  function placeInIdOrder(item, id) {
    var later = null;
    for (var node = messages.lastElementChild; node; node = node.previousElementSibling) {
      if (!node.dataset.id) continue;
      if (Number(node.dataset.id) < id) break;
      later = node;
    }
    messages.insertBefore(item, later);
    item.scrollIntoView({block: "end"});
  }

  function showMembers() {
    memberCount.textContent = people.count;
    memberList.textContent = "";
    var listed = Array.from(people.members.values());
    shown = {};
    listed.sort(function (a, b) { return a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1; })
      .forEach(function (member) {
        shown[member.id] = member.name;
        var item = document.createElement("li");
        item.dataset.testid = "member";
        item.appendChild(span("name", member.name + (member.id === myId ? " (you)" : ""), member.color));
        memberList.appendChild(item);
      });
    moreMembers.hidden = people.next === null;
  }

  function span(className, text, color) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    if (color) element.style.color = color;
    return element;
  }

  socket.onStatus(function (value) { status.textContent = value; });
  socket.on("welcome", function (data) {
    myId = data.id;
    if (!nameInput.value.trim() && document.activeElement !== nameInput) nameInput.value = data.name;
    remember();
  });
  socket.on("message", function (data) {
    var item = document.createElement("li");
    item.className = "message";
    item.dataset.testid = "message";
    item.dataset.id = data.id;
    item.appendChild(span("name", data.name, data.color));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("text", data.text));
    placeInIdOrder(item, data.id);
  });
  socket.on("resync", function (data) {
    if (data.reason === "broker_reconnected") return;  // the client reconnects and resumes by itself
    messages.textContent = "";  // what follows is recent history, afresh
    line("notice").textContent = "Too much was missed to catch up: showing recent messages.";
  });
  // The member count and list: a first page on every (re)connect, then one diff per worker and
  // window (PresenceList applies them by id and in order); "more" asks for the next page.
  var people = new PresenceList(socket, function (list, diff) {
    if (diff) noticeChanges(diff);  // first: it tells a new name from the name shown so far
    showMembers();
  });

  // A line per joiner, leaver or new name in a small diff; a summary for a crowd.
  function noticeChanges(diff) {
    var joins = Object.keys(diff.joins).map(function (id) { return diff.joins[id]; });
    var leaves = Object.keys(diff.leaves).map(function (id) { return diff.leaves[id]; });
    var joined = joins.length + (diff.joins_omitted || 0);  // a crowd's diff lists only some joiners
    if (joined + leaves.length > 5) {
      line("notice").textContent = joined + " joined, " + leaves.length + " left";
      return;
    }
    joins.forEach(function (member) {
      var before = shown[member.id];
      if (!before) line("notice").textContent = member.name + " joined";
      else if (before !== member.name) line("notice").textContent = before + " is now " + member.name;
    });
    leaves.forEach(function (member) { line("notice").textContent = member.name + " left"; });
  }

  socket.on("error", function (data) { error.textContent = data.detail; });

  function remember() {
    localStorage.setItem("chat.name", nameInput.value.trim());
    localStorage.setItem("chat.color", colorInput.value);
  }

  function changeNick() {
    if (!nameInput.value.trim()) return;
    remember();
    error.textContent = "";
    socket.send("nick", {name: nameInput.value.trim(), color: colorInput.value});
  }

  moreMembers.addEventListener("click", function () { people.more(); });
  nameInput.addEventListener("change", changeNick);
  colorInput.addEventListener("change", changeNick);
  byId("nick-form").addEventListener("submit", function (event) { event.preventDefault(); changeNick(); });
  byId("send-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = textInput.value.trim();
    if (!text) return;
    error.textContent = "";
    if (socket.send("message", {text: text})) textInput.value = "";
  });
})();
