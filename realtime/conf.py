"""The settings this layer reads, with their defaults (documented in docs/settings.md)."""

from django.conf import settings

DEFAULTS = {
    # Put before every Redis channel and key this project uses (docs/settings.md: why empty).
    "REALTIME_KEY_PREFIX": "",
    # Largest message a client may send; a frame header that declares more closes with 1009.
    "WEBSOCKET_MAX_MESSAGE_SIZE": 1024 * 1024,
    # A connection's outbound queue; a client that lets it overflow is closed with 1013.
    "WEBSOCKET_MAX_QUEUE_BYTES": 4 * 1024 * 1024,
    "WEBSOCKET_MAX_QUEUE_MESSAGES": 1000,
    # The kernel's send buffer per socket (SO_SNDBUF) in bytes; 0 keeps the system's autotuning
    # (up to tcp_wmem, often 4 MiB per slow socket). Lower it to bound memory with many slow clients.
    "WEBSOCKET_SEND_BUFFER": 0,
    # Seconds to wait for the peer's close frame before cutting the TCP connection.
    "WEBSOCKET_CLOSE_TIMEOUT": 5.0,
    # Seconds a client has to send a complete upgrade request after connecting.
    "WEBSOCKET_HANDSHAKE_TIMEOUT": 10.0,
    # Open connections per worker process; one more gets 503 at the handshake.
    "WEBSOCKET_MAX_CONNECTIONS": 9000,
    # Greenlets of a worker process that read the database for joins at once (the others wait their
    # turn): bounds the database connections a join storm opens, per process.
    "WEBSOCKET_DB_CONCURRENCY": 8,
    # Upgrades a worker process handles at once between the request and the 101 (the join: its
    # database reads and presence); one more gets 503 + Retry-After instead of waiting in line.
    "WEBSOCKET_MAX_HANDSHAKES": 500,
    # Incoming messages per second per connection (0: no limit), and the burst allowed above it.
    "WEBSOCKET_RATE_LIMIT": 50,
    "WEBSOCKET_RATE_BURST": 100,
    # Incoming frames per second per connection, of every kind (pings, pongs, fragments; one more
    # per 64 KiB of payload), and the burst; over it: close 1008. 0: no limit.
    "WEBSOCKET_FRAME_RATE": 200,
    "WEBSOCKET_FRAME_BURST": 400,
    # Ping a client silent for this long; drop it if nothing comes back within the timeout (1011).
    "WEBSOCKET_PING_INTERVAL": 20.0,
    "WEBSOCKET_PING_TIMEOUT": 20.0,
    # Close a connection that sent no message for this long (1001); 0 disables.
    "WEBSOCKET_IDLE_TIMEOUT": 3600.0,
    # Presence (realtime/presence.py): a member of a worker that died is gone from member lists
    # within PRESENCE_TTL s, and reported (a `leave`) within PRESENCE_TTL + PRESENCE_REFRESH s.
    "PRESENCE_TTL": 30.0,
    "PRESENCE_REFRESH": 10.0,
    # Each worker announces a room's joins, leaves and name changes of this many s as one diff.
    "PRESENCE_DIFF_WINDOW": 1.0,
    # A joiner gets the member count and at most this many members; it asks for more page by page.
    "PRESENCE_PAGE_SIZE": 100,
    # The browser client's heartbeat (client.js): a `ping` every INTERVAL s; nothing received within
    # TIMEOUT s after it (or no open within TIMEOUT s) and it drops the connection and reconnects.
    "CLIENT_HEARTBEAT_INTERVAL": 20.0,
    "CLIENT_HEARTBEAT_TIMEOUT": 10.0,
    # A message id the browser client still lacks after this many s while later ones came (a hole):
    # it reconnects and resumes from the last id before the hole.
    "CLIENT_HOLE_TIMEOUT": 3.0,
    # A client told to come back (close 1001/1012, 503) or that lost its connection reconnects after
    # a random delay within this many s (full jitter), so that a crowd does not come back at once.
    "CLIENT_RECONNECT_WINDOW": 5.0,
}


def get(name):
    return getattr(settings, name, DEFAULTS[name])
