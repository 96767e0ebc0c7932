// The clock page: shows each `time` push; Stop asks the server to end the session (`close`).
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  var socket = new RealtimeSocket(document.currentScript.dataset.url);
  socket.onStatus(function (status) { byId("status").textContent = status; });
  socket.on("time", function (data) {
    var utc = byId("utc");
    utc.dateTime = data.utc;
    utc.textContent = data.utc.slice(11, 19);  // hh:mm:ss
    byId("tick").textContent = data.tick;
  });
  socket.on("goodbye", function (data) { byId("goodbye").textContent = data.detail; });
  byId("stop").addEventListener("click", function () { socket.send("close"); });
})();
