// The client's settings: the server's, when the page has them ({% realtime_client %} renders them
// as JSON in <script type="application/json" id="realtime-settings">), else these defaults, which
// are the server's defaults (tests/test_client_package.py keeps them equal to realtime/conf.py).
// Times are in milliseconds.

export const DEFAULTS = Object.freeze(/* defaults */ {
  "heartbeatInterval": 20000,
  "heartbeatTimeout": 10000,
  "holeTimeout": 3000,
  "reconnectWindow": 5000
} /* end defaults */);

// Not server settings: how the client backs off and waits for replies.
export const CLIENT_DEFAULTS = Object.freeze({
  minDelay: 500,  // ms: the first reconnect delay's cap, doubling with each failed attempt ...
  maxDelay: 15000,  // ... up to this
  pushTimeout: 10000,  // ms: a push without a reply by then rejects with "timeout"
  outboxMaxAge: 24 * 3600 * 1000,  // ms: the chat's nonce window, unless the page says otherwise
});

export const SETTINGS_ELEMENT_ID = "realtime-settings";

// The settings the page was rendered with ({} outside a page, or in a page without the tag).
export function pageSettings(doc = globalThis.document) {
  const element = doc && doc.getElementById && doc.getElementById(SETTINGS_ELEMENT_ID);
  if (!element) return {};
  try {
    const settings = JSON.parse(element.textContent);
    return settings && typeof settings === "object" ? settings : {};
  } catch {
    return {};
  }
}
