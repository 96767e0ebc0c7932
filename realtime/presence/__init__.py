"""Who is connected to a group (a chat room, ...), across every worker process.

`tracker` keeps this process's members and announces their changes; `stores` keeps the lists
(Redis, or this process alone); `diff` coalesces changes into one event per window.
"""

from .stores import InProcessStore, Page, RedisStore
from .tracker import Presence, flush_before_exit, get_presence

__all__ = ["InProcessStore", "Page", "Presence", "RedisStore", "flush_before_exit", "get_presence"]
