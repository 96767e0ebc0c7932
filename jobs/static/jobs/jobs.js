// The jobs page: the user's jobs topic on the page's one socket (static/site.js). The page was
// rendered with the jobs' states; each join's reply has them again (after a reconnect too), then
// each change comes as a `job` push. Per job the state with the highest version wins.
import {socket} from "../site.js";

const topic = document.getElementById("jobs-module").dataset.topic;
const list = document.getElementById("jobs");
const template = document.getElementById("job-template");

function row(id) {
  let item = list.querySelector(`[data-job-id="${Number(id)}"]`);
  if (item) return item;
  item = template.content.firstElementChild.cloneNode(true);
  item.dataset.jobId = id;
  item.querySelector(".job-id").textContent = id;
  const later = Array.from(list.children).find((other) => Number(other.dataset.jobId) > id);
  list.insertBefore(item, later || null);
  return item;
}

function show(job) {
  const item = row(job.id);
  if (Number(item.dataset.version) >= job.version) return;  // older news than what is shown
  item.dataset.version = job.version;
  item.dataset.state = job.state;
  item.querySelector("progress").value = job.progress;
  item.querySelector(".job-percent").textContent = job.progress + "%";
  item.querySelector(".job-state").textContent = job.state;
  item.querySelector(".job-detail").textContent = job.detail;
}

if (topic) {  // a guest watches no jobs
  const jobs = socket.channel(topic);
  jobs.on("job", show);
  jobs.onJoin((response) => response.jobs.forEach(show));
  jobs.join();
}
