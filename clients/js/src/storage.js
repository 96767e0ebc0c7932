// sessionStorage where there is one (a browser tab): what must survive a reload of the tab.
// Anything that fails (no storage, full, disabled) degrades to this page's life.

export function defaultStorage() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null;  // a sandboxed frame may throw on access
  }
}

export function load(storage, key, fallback) {
  try {
    const text = storage && storage.getItem(key);
    return text ? JSON.parse(text) : fallback;
  } catch {
    return fallback;
  }
}

export function save(storage, key, value) {
  try {
    if (value === null) storage && storage.removeItem(key);
    else storage && storage.setItem(key, JSON.stringify(value));
  } catch { /* full or disabled: kept in memory for this page's life */ }
}

// 32 hex digits from the platform's random source.
export function randomId() {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(16)),
                    (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// This tab's id as a sender: with it the server tells a resend of ours from another client's push.
export function storedClientId(storage) {
  let id = load(storage, "realtime.client", null);
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    id = randomId();
    save(storage, "realtime.client", id);
  }
  return id;
}
