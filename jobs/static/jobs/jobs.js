// The jobs page: each `job` event updates (or adds) that job's row. The page was rendered with
// the jobs' states; the socket sends them again on every (re)connect, then each change.
(function () {
  "use strict";
  var list = document.getElementById("jobs");
  var template = document.getElementById("job-template");
  var socket = new RealtimeSocket(document.currentScript.dataset.url);

  function row(id) {
    var item = list.querySelector('[data-job-id="' + id + '"]');
    if (item) return item;
    item = template.content.firstElementChild.cloneNode(true);
    item.dataset.jobId = id;
    item.querySelector(".job-id").textContent = id;
    var later = Array.prototype.find.call(list.children, function (other) { return Number(other.dataset.jobId) > id; });
    list.insertBefore(item, later || null);
    return item;
  }

  socket.onStatus(function (status) { document.getElementById("status").textContent = status; });
  socket.on("job", function (job) {
    var item = row(job.id);
    if (Number(item.dataset.version) >= job.version) return;  // older news than what is shown
    item.dataset.version = job.version;
    item.dataset.state = job.state;
    item.querySelector("progress").value = job.progress;
    item.querySelector(".job-percent").textContent = job.progress + "%";
    item.querySelector(".job-state").textContent = job.state;
    item.querySelector(".job-detail").textContent = job.detail;
  });
})();
