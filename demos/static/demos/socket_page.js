// A demo page: one WebSocket, a status line, an input and a log. Plain browser WebSocket API.
(function () {
  "use strict";
  var url = document.currentScript.dataset.url;
  var status = document.getElementById("status");
  var log = document.getElementById("log");
  var form = document.getElementById("send-form");
  var input = document.getElementById("message");

  function append(direction, text) {
    var item = document.createElement("li");
    item.className = direction;
    item.textContent = (direction === "in" ? "← " : "→ ") + text;  // text, never HTML
    log.appendChild(item);
  }

  var ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = function () { status.textContent = "open"; };
  ws.onclose = function (event) { status.textContent = "closed (" + event.code + ")"; };
  ws.onerror = function () { status.textContent = "error"; };
  ws.onmessage = function (event) {
    var text = typeof event.data === "string" ? event.data : "[" + event.data.byteLength + " bytes]";
    append("in", text);
  };
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(input.value);
    append("out", input.value);
    input.value = "";
  });
})();
