// The chat page. Text from the server is only ever set with textContent: never parsed as HTML.
(function () {
  "use strict";
  var url = document.currentScript.dataset.url;
  var byId = function (id) { return document.getElementById(id); };
  var messages = byId("messages"), status = byId("status"), error = byId("error"), memberList = byId("members");
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

  var members = {};  // member id -> {id, name, color}: who is in the room, in every worker
  var myId = null;

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
    memberList.textContent = "";
    Object.keys(members).map(function (id) { return members[id]; })
      .sort(function (a, b) { return a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1; })
      .forEach(function (member) {
        var item = document.createElement("li");
        item.dataset.testid = "member";
        item.appendChild(span("name", member.name + (member.id === myId ? " (you)" : ""), member.color));
        memberList.appendChild(item);
      });
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
  // The list comes on every (re)connect; join, leave and nick keep it current. All apply by member
  // id, so an event about a change the list already shows changes nothing.
  socket.on("presence", function (data) {
    members = {};
    data.members.forEach(function (member) { members[member.id] = member; });
    showMembers();
  });
  socket.on("join", function (data) {
    if (members[data.id]) return;
    members[data.id] = {id: data.id, name: data.name, color: data.color};
    showMembers();
    line("notice").textContent = data.name + " joined";
  });
  socket.on("leave", function (data) {
    if (!members[data.id]) return;
    delete members[data.id];
    showMembers();
    line("notice").textContent = data.name + " left";
  });
  socket.on("nick", function (data) {
    members[data.id] = {id: data.id, name: data.name, color: data.color};
    showMembers();
    line("notice").textContent = data.old_name + " is now " + data.name;
  });
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
