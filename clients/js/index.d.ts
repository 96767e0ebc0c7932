// Types of django-realtime-gevent-client (src/index.js). The wire protocol: docs/protocol.md, Channels.

export type Status = "connecting" | "live" | "reconnecting" | "offline" | "closed";
export type ChannelState = "closed" | "joining" | "joined";
export type Params = Record<string, unknown>;

/** The client's settings, in milliseconds; a page with {% realtime_client %} gets the server's. */
export interface Settings {
  heartbeatInterval: number;
  heartbeatTimeout: number;
  holeTimeout: number;
  reconnectWindow: number;
  outboxMaxAge: number;
  minDelay: number;
  maxDelay: number;
  pushTimeout: number;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface SocketOptions extends Partial<Settings> {
  /** Sent in the subprotocol (realtime.bearer.<base64url>), never in the URL. */
  token?: string;
  /** Asked before every connect (and after a 4401 close): a fresh token. */
  getToken?: () => string | Promise<string>;
  /** The query string of each connect. */
  params?: Params | (() => Params);
  /** Where outboxes and the tab's client id are kept: sessionStorage by default; null: nowhere. */
  storage?: StorageLike | null;
  /** The WebSocket class: the global one by default (Node 20: run with --experimental-websocket). */
  WebSocket?: typeof WebSocket;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ServerError {
  code: string;
  detail: string;
  retry_after?: number;
  [key: string]: unknown;
}

export declare class ReplyError extends Error {
  /** The server's error code, or "timeout" (no reply in time), "disconnected" (the connection was lost first), "not_joined". */
  code: string;
  detail: string;
  response: ServerError;
}

export declare class Socket {
  constructor(url: string, options?: SocketOptions);
  readonly url: string;
  readonly settings: Settings;
  readonly status: Status | null;
  /** This tab's id as a sender (kept in storage): outbox channels send it as the join's `client`. */
  readonly clientId: string;
  connect(): this;
  /** Stop for good: no reconnecting. */
  disconnect(): void;
  /** Drop the connection and open a new one at once. */
  reconnect(): void;
  /** The channel of a topic (one per topic and socket). */
  channel(topic: string, options?: ChannelOptions): Channel;
  /** Called at once with the current status, then on each change; `info` tells why it is closed. */
  onStatus(handler: (status: Status, info: CloseInfo | null) => void): () => void;
  /** The server's `error` pushes on the `realtime` topic. */
  onError(handler: (error: ServerError) => void): () => void;
  /** Change the socket's identity without reconnecting; resolves with {user}. */
  authenticate(token: string): Promise<{user: unknown}>;
}

export interface ChannelOptions {
  /** Join params: an object, or a function asked at each (re)join. */
  params?: Params | (() => Params);
  /** Rejoin with `since` = the offset watermark; drop repeats; rejoin when a hole stays open. */
  resume?: boolean;
  /** Keep send()s until the server answered (nonce, one in flight, sessionStorage). */
  outbox?: boolean;
  outboxMaxAge?: number;
}

export interface PushMeta {
  event: string;
  offset?: number;
}

export interface OutboxEntry {
  nonce: string;
  event: string;
  data: Params & {nonce: string};
  /** Date.now() when it was added. */
  queued: number;
}

export type OutboxChange =
  | {kind: "ack"; entry: OutboxEntry; response: Record<string, unknown>}
  | {kind: "refused"; entry: OutboxEntry; error: ServerError}
  | {kind: "retry"; entry: OutboxEntry; error: ServerError}
  | {kind: "unsent"; entry: OutboxEntry};

export declare class Channel {
  readonly topic: string;
  readonly state: ChannelState;
  /** Join, and rejoin after every reconnect; settles with the first join's reply. */
  join<Response = unknown>(): Promise<Response>;
  leave(): Promise<unknown>;
  on<Data = any>(event: string, handler: (data: Data, meta: PushMeta) => void): () => void;
  /** After each join and rejoin, with the channel's reply. */
  onJoin<Response = unknown>(handler: (response: Response) => void): () => void;
  /** Before the recent history of a join that could not resume (`too_far_behind`, `unknown_since`). */
  onReset(handler: (reason: string) => void): () => void;
  /** The server ended the topic: a refused join, or its `close` push. */
  onClose(handler: (error: ServerError & {rejoin?: boolean}) => void): () => void;
  push<Response = unknown>(event: string, data?: Params, options?: {timeout?: number}): Promise<Response>;
  /** Outbox channels: kept until answered; null when the outbox is full. */
  send(event: string, data?: Params): OutboxEntry | null;
  /** The outbox's unanswered entries, oldest first. */
  pending(): OutboxEntry[];
  onOutbox(handler: (change: OutboxChange) => void): () => void;
}

export interface Member {
  id: string;
  [key: string]: unknown;
}

export interface PresenceDiff {
  seq: number;
  count: number;
  joins: Record<string, Member>;
  leaves: Record<string, Member>;
  joins_omitted?: number;
}

export declare class PresenceList {
  constructor(channel: Channel, onChange?: (list: PresenceList, diff: PresenceDiff | (Params & {joined: number; left: number}) | null) => void);
  readonly count: number;
  readonly members: Map<string, Member>;
  /** The cursor of the next page: null when there is none, "" to start from the first. */
  readonly next: string | null;
  /** Ask for the next page; false when there is none or one is on its way. */
  more(): boolean;
}

export declare const PROTOCOL: "realtime.v1";
export declare const OUTBOX_LIMIT: number;
export declare const OUTBOX_MAX_BYTES: number;
export declare const DEFAULTS: Readonly<Pick<Settings, "heartbeatInterval" | "heartbeatTimeout" | "holeTimeout" | "reconnectWindow">>;
export declare function pageSettings(doc?: Document): Partial<Settings>;
export declare function base64url(text: string): string;
