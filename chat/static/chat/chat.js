// The chat page. Text from the server is only ever set with textContent: never parsed as HTML.
(function () {
  "use strict";
  var url = document.currentScript.dataset.url;
  var byId = function (id) { return document.getElementById(id); };
  var messages = byId("messages"), status = byId("status"), error = byId("error");
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

  function line(className) {
    var item = document.createElement("li");
    item.className = className;
    messages.appendChild(item);
    item.scrollIntoView({block: "end"});
    return item;
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
    if (!nameInput.value.trim()) nameInput.value = data.name;
    remember();
  });
  socket.on("message", function (data) {
    var item = line("message");
    item.dataset.testid = "message";
    item.dataset.id = data.id;
    item.appendChild(span("name", data.name, data.color));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("text", data.text));
  });
  socket.on("join", function (data) { line("notice").textContent = data.name + " joined"; });
  socket.on("leave", function (data) { line("notice").textContent = data.name + " left"; });
  socket.on("nick", function (data) { line("notice").textContent = data.old_name + " is now " + data.name; });
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
