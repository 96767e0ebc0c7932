"""The WebSocket transport: a socket-free core (`core`), the socket interface views see (`websocket`),
and its gevent shell (`connection`)."""

from .connection import Connection
from .core import Core, Limits
from .websocket import ConnectionClosed, WebSocket

__all__ = ["Connection", "ConnectionClosed", "Core", "Limits", "WebSocket"]
