// The site's one socket per page (templates/live_page.html): every topic the page needs is a channel
// on it. This module makes it, shows its status, and (logged in) joins the user's own topic, whose
// `mention` events show wherever the user is. The page's own module adds its topics:
//   import {socket} from "/static/site.js";  (relative: "../site.js" from an app's static folder)
import {Socket} from "realtime";

const script = document.getElementById("site-module");
const SHOWN_AT_ONCE = 5;  // notifications: older ones go when more come

export const userId = script.dataset.userId || null;
export const socket = new Socket(script.dataset.socketUrl);

// The socket's status wherever the page shows it; a socket ended for good says why.
socket.onStatus((status, info) => {
  for (const element of document.querySelectorAll('[data-testid="status"]')) {
    element.textContent = status;
    element.dataset.status = status;
  }
  if (status === "closed" && info && info.code === 4403) notify({text: "You were signed out on every device: reload the page."});
});

// A notification at the top of the page: `text`, and a link when it leads somewhere.
export function notify({title, text, href}) {
  const list = document.getElementById("notifications");
  const item = document.createElement("li");
  item.className = "notification";
  item.dataset.testid = "notification";
  const body = document.createElement(href ? "a" : "span");
  if (href) body.href = href;
  if (title) {
    const strong = document.createElement("strong");
    strong.textContent = title;
    body.append(strong, " ");
  }
  body.append(text);
  const close = document.createElement("button");
  close.type = "button";
  close.className = "dismiss";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());
  item.append(body, close);
  list.prepend(item);
  while (list.children.length > SHOWN_AT_ONCE) list.lastElementChild.remove();
}

if (userId) {
  const mine = socket.channel(`user:${userId}`);
  mine.on("mention", (data) => notify({
    title: `${data.from} mentioned you in #${data.room}:`, text: data.text, href: `/chat/${data.room}/#message-${data.id}`}));
  mine.join();
}

socket.connect();
