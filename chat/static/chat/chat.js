// The chat page: its room (`chat:<room>`) and the room directory (`rooms`) as channels of the page's
// one socket (static/site.js). Text from the server is only ever set with textContent: never parsed
// as HTML. Your own messages go through the room channel's outbox: shown at once as pending, then
// matched by the reply to their push (its `id`), never by anything in a broadcast: the room's copy
// of a message is placed by its id, so nothing another member sends can take a message off the page.
import {PresenceList} from "realtime";
import {socket} from "../site.js";

const roomName = document.getElementById("chat-module").dataset.room;
const byId = (id) => document.getElementById(id);
const messages = byId("messages"), error = byId("error"), memberList = byId("members");
const memberCount = byId("member-count"), moreMembers = byId("more-members"), roomList = byId("rooms");
const nameInput = byId("name"), colorInput = byId("color"), textInput = byId("text");
const NICK_SETTLE = 1000;  // ms: a name and a colour changed within this are sent as one edit, one notice

nameInput.value = localStorage.getItem("chat.name") || "";
colorInput.value = localStorage.getItem("chat.color") || colorInput.value;

const room = socket.channel(`chat:${roomName}`, {
  params: () => {
    const params = {color: colorInput.value};
    if (nameInput.value.trim()) params.name = nameInput.value.trim();
    return params;
  },
  resume: true,
  outbox: true,
});

let me = {id: null, name: null, color: null};  // as the server last told us (the join) or we told it (nick)
let shown = {};  // member id -> {name, color} the list shows (to tell what a diff changed)

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
  let before = firstOwnWaiting();
  if (id !== undefined) {
    for (let node = before ? before.previousElementSibling : messages.lastElementChild; node; node = node.previousElementSibling) {
      if (!node.dataset.id) continue;
      if (Number(node.dataset.id) < id) break;
      before = node;
    }
  }
  messages.insertBefore(item, before);
}

function notice(text) {
  const item = document.createElement("li");
  item.className = "notice";
  item.textContent = text;
  changing(() => insert(item));
}

function span(className, text, color) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  if (color) element.style.color = color;
  return element;
}

// A message line: time (local), name, text. `data` is a `message` push's, or {name, color, text} of a pending one.
function messageItem(data, state) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.testid = "message";
  item.dataset.state = state;
  if (data.id !== undefined) {
    item.dataset.id = data.id;
    item.id = `message-${data.id}`;  // a mention's link leads here
  }
  const time = document.createElement("time");
  time.className = "time";
  if (data.ts) {
    const at = new Date(data.ts);
    time.dateTime = data.ts;
    time.textContent = at.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    time.title = at.toLocaleString();
  } else {
    time.textContent = "sending";
  }
  item.append(time, " ", span("name", data.name, data.color));
  if (data.user) {  // posted by a logged-in account: the server's mark, whatever the name says
    const mark = span("account", data.user === data.name ? "\u2713" : "\u2713 " + data.user);
    mark.title = "logged in as " + data.user;
    mark.dataset.testid = "account";
    item.append(mark);
  }
  item.append(" ", span("text", data.text));
  return item;
}

// Our own item of an outbox entry: found by its nonce, which only this tab knows.
function ownItem(nonce) {
  return Array.from(messages.querySelectorAll("[data-nonce]")).find((item) => item.dataset.nonce === nonce) || null;
}

function storedItem(id) {
  return messages.querySelector(`[data-state="stored"][data-id="${Number(id)}"]`);
}

function showPending(entry) {
  const item = messageItem({name: me.name || nameInput.value.trim(), color: me.color || colorInput.value,
                            text: entry.data.text}, "pending");
  item.dataset.nonce = entry.nonce;
  changing(() => messages.appendChild(item), true);  // last, after those still waiting
}

function send(text) {
  const entry = room.send("message", {text});
  if (entry === null) {
    error.textContent = "Too many messages are waiting to be sent: wait until the connection is back.";
    return false;
  }
  showPending(entry);
  return true;
}

// Not sent in time: say why, and offer to send it again (as a new message: it was not stored).
// Refused by the server: sending the same text again would be refused again, so offer to edit it.
function showFailed(item, detail, refused) {
  item.dataset.state = "failed";
  item.querySelector(".time").textContent = "not sent";
  const why = span("failure", ` ${detail} `);
  why.dataset.testid = "send-error";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = refused ? "Edit" : "Retry";
  button.dataset.testid = refused ? "edit" : "retry";
  button.addEventListener("click", () => {
    const text = item.querySelector(".text").textContent;
    item.remove();
    if (!refused) return send(text);
    textInput.value = text;
    textInput.focus();
  });
  item.append(why, button);
}

// Stored as message `id` (the reply to our push): the room's copy, when it came first, takes its place.
function acknowledged(item, id) {
  delete item.dataset.nonce;
  if (typeof id !== "number") {  // stored, delivery degraded: the copy comes when the page resumes
    item.dataset.state = "sent";
    item.querySelector(".time").textContent = "sent";
    return;
  }
  if (storedItem(id)) {
    item.remove();
    return;
  }
  item.dataset.state = "sent";
  item.dataset.id = id;
  item.querySelector(".time").textContent = "sent";
  changing(() => { item.remove(); insert(item, id); });
}

for (const entry of room.pending()) if (entry.event === "message") showPending(entry);  // from before a reload

const RETRY_NOTICE = "Too many messages at once: yours are sent again in a moment.";

room.onOutbox((change) => {
  const item = ownItem(change.entry.nonce);
  if (change.kind !== "retry" && error.textContent === RETRY_NOTICE && !room.pending().length) {
    error.textContent = "";  // everything went through
  }
  if (change.kind === "retry") {
    error.textContent = RETRY_NOTICE;
  } else if (!item) {
    return;
  } else if (change.kind === "ack") {
    acknowledged(item, change.response.id);
  } else if (change.kind === "refused") {
    showFailed(item, change.error.detail, true);
  } else if (change.kind === "unsent") {
    showFailed(item, "Not sent: the connection was gone for too long.", false);
  }
});

room.onJoin((response) => {
  me = {id: response.id, name: response.name, color: response.color};
  if (!nameInput.value.trim() && document.activeElement !== nameInput) nameInput.value = response.name;
  remember();
});

room.on("message", (data) => {
  const item = messageItem(data, "stored");
  const copy = messages.querySelector(`[data-id="${Number(data.id)}"]`);  // ours, acknowledged with this id
  changing(() => {
    if (copy) copy.remove();
    insert(item, data.id);
  });
});

room.onReset(() => {  // what follows is recent history, afresh
  const waiting = Array.from(messages.querySelectorAll('[data-state="pending"], [data-state="failed"]'));
  messages.textContent = "";
  for (const item of waiting) messages.appendChild(item);
  notice("Too much was missed to catch up: showing recent messages.");
});

room.onClose((refusal) => { error.textContent = refusal.detail || refusal.code; });

// The member count and list: a first page on every join, then one diff per worker and window
// (PresenceList applies them by id and in order); "More" asks for the next page.
const people = new PresenceList(room, (list, diff) => {
  if (diff) noticeChanges(diff);  // first: it tells a change from what is shown so far
  showMembers();
});

function showMembers() {
  memberCount.textContent = people.count;
  memberList.textContent = "";
  const listed = Array.from(people.members.values());
  shown = {};
  listed.sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1)).forEach((member) => {
    shown[member.id] = {name: member.name, color: member.color};
    const item = document.createElement("li");
    item.dataset.testid = "member";
    item.append(span("name", member.name + (member.id === me.id ? " (you)" : ""), member.color));
    memberList.appendChild(item);
  });
  moreMembers.hidden = people.next === null;
}

// What one member's entry in a diff changed, in words (null: nothing to tell).
function change(before, member) {
  if (!before) return member.name + " joined";
  const renamed = before.name !== member.name, recoloured = before.color !== member.color;
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
  const joins = Object.values(diff.joins), leaves = Object.values(diff.leaves);
  const joined = joins.length + (diff.joins_omitted || 0);  // a crowd's diff lists only some joiners
  if (joined + leaves.length > 5) {
    notice(joined + " joined, " + leaves.length + " left");
    return;
  }
  for (const member of joins) {
    const text = change(shown[member.id], member);
    if (text) notice(text);
  }
  for (const member of leaves) notice(member.name + " left");
}

function remember() {
  localStorage.setItem("chat.name", nameInput.value.trim());
  localStorage.setItem("chat.color", colorInput.value);
}

// A name and a colour changed together are one edit: sent once, announced once.
let nickTimer = null;
function changeNick(now) {
  clearTimeout(nickTimer);
  nickTimer = null;
  if (!now) {
    nickTimer = setTimeout(() => changeNick(true), NICK_SETTLE);
    return;
  }
  const name = nameInput.value.trim(), color = colorInput.value;
  if (!name || (name === me.name && color === me.color)) return;
  remember();
  error.textContent = "";
  if (room.state !== "joined") return;  // the next join sends them as its params
  me = {id: me.id, name, color};
  room.push("nick", {name, color}).catch((refusal) => { error.textContent = refusal.detail || refusal.code; });
}

// The room directory: the rooms with the most members, live.
const directory = socket.channel("rooms");
function showRooms(data) {
  roomList.textContent = "";
  for (const {name, count} of (data && data.rooms) || []) {
    const item = document.createElement("li");
    item.dataset.testid = "room";
    const link = document.createElement("a");
    link.href = name === "lobby" ? "/chat/" : `/chat/${encodeURIComponent(name)}/`;
    link.textContent = "#" + name;
    if (name === roomName) link.setAttribute("aria-current", "page");
    const counted = span("count", String(count));
    counted.dataset.testid = "room-count";
    counted.title = `${count} here now`;
    item.append(link, " ", counted);
    roomList.appendChild(item);
  }
  if (!roomList.children.length) roomList.innerHTML = '<li class="hint">Nobody is chatting yet.</li>';
}
directory.on("rooms", showRooms);
directory.onJoin(showRooms);

moreMembers.addEventListener("click", () => people.more());
nameInput.addEventListener("change", () => changeNick(false));
colorInput.addEventListener("change", () => changeNick(false));
byId("nick-form").addEventListener("submit", (event) => { event.preventDefault(); changeNick(true); });
byId("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text) return;
  error.textContent = "";
  if (nickTimer !== null) changeNick(true);  // a name just changed goes first: the message is sent under it
  if (send(text)) textInput.value = "";
});

room.join();
directory.join();
