// The browser and Node client of the channel layer (docs/protocol.md, Channels). No dependencies.
export {Socket, PROTOCOL, base64url} from "./socket.js";
export {Channel} from "./channel.js";
export {PresenceList} from "./presence.js";
export {ReplyError} from "./errors.js";
export {OUTBOX_LIMIT, OUTBOX_MAX_BYTES} from "./outbox.js";
export {DEFAULTS, pageSettings} from "./settings.js";
