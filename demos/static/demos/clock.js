// The clock page: the `clock` topic on the page's one socket (static/site.js). The join's reply is
// the latest tick, then a `time` push each interval. Stop leaves the topic (Start joins it again).
import {socket} from "../site.js";

const byId = (id) => document.getElementById(id);
const clock = socket.channel("clock");
const button = byId("stop");

function show(data) {
  if (!data || !data.utc) return;  // no tick yet
  const utc = byId("utc");
  utc.dateTime = data.utc;
  utc.textContent = data.utc.slice(11, 19);  // hh:mm:ss
  byId("tick").textContent = data.tick;
}

clock.on("time", show);
clock.onJoin(show);
clock.join();

button.addEventListener("click", () => {
  if (clock.state === "closed") {
    byId("goodbye").textContent = "";
    button.textContent = "Stop";
    clock.join();
    return;
  }
  clock.leave().then(() => { byId("goodbye").textContent = "Stopped: the server sends no more ticks."; });
  button.textContent = "Start";
});
