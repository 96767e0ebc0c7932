"""Who is connected to a group (a chat room, ...), across every worker process.

`tracker` keeps this process's members and announces their changes; `stores` keeps the lists
(Redis, or this process alone: chosen from the broker's capabilities); `diff` coalesces changes
into one announcement per window; `events` writes every presence event's text. This process's
tracker is `get_presence()` (realtime/runtime.py: made and reset with the broker and the hub).
"""

from ..runtime import get_presence
from .stores import InProcessStore, Page, RedisStore, Store, store_for
from .tracker import Presence

__all__ = ["InProcessStore", "Page", "Presence", "RedisStore", "Store", "get_presence", "store_for"]
