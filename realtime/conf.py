"""The settings this layer reads, with their defaults (documented in docs/settings.md)."""

from django.conf import settings

DEFAULTS = {
    # Largest message a client may send; a frame header that declares more closes with 1009.
    "WEBSOCKET_MAX_MESSAGE_SIZE": 1024 * 1024,
    # A connection's outbound queue; a client that lets it overflow is closed with 1013.
    "WEBSOCKET_MAX_QUEUE_BYTES": 4 * 1024 * 1024,
    "WEBSOCKET_MAX_QUEUE_MESSAGES": 1000,
    # Seconds to wait for the peer's close frame before cutting the TCP connection.
    "WEBSOCKET_CLOSE_TIMEOUT": 5.0,
    # Presence (realtime/presence.py): a member of a worker that died is gone from member lists
    # within PRESENCE_TTL s, and reported (a `leave`) within PRESENCE_TTL + PRESENCE_REFRESH s.
    "PRESENCE_TTL": 30.0,
    "PRESENCE_REFRESH": 10.0,
    # The browser client's heartbeat (client.js): a `ping` every INTERVAL s; nothing received within
    # TIMEOUT s after it (or no open within TIMEOUT s) and it drops the connection and reconnects.
    "CLIENT_HEARTBEAT_INTERVAL": 20.0,
    "CLIENT_HEARTBEAT_TIMEOUT": 10.0,
}


def get(name):
    return getattr(settings, name, DEFAULTS[name])
