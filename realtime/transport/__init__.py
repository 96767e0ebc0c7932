"""The WebSocket transport: a socket-free core (`core`) and the gevent shell views use (`connection`)."""

from .connection import Connection, ConnectionClosed
from .core import Core, Limits

__all__ = ["Connection", "ConnectionClosed", "Core", "Limits"]
