"""The channel layer: one socket per page, many topics, each authorized by a channel class.

- `Channel` (channel.py): a topic joined by one socket: `join`, `handle_<event>`, `leave`.
- `topic`, `re_topic`, `include_topics` (routing.py): topics routed to channel classes like URLs.
- `channel_socket` (endpoint.py): the `/socket/` view, realtime.v1 (docs/protocol.md, Channels).
- `publish`, `notify` (personal.py): push to a topic, or to every socket of a user, from anywhere.
- tokens.py: signed tokens for clients without a session cookie; revocation.py: `disconnect(user)`.
"""

from .channel import Channel
from .endpoint import channel_socket
from .errors import ChannelError, Forbidden, OverBudget
from .history import History
from .personal import notify, publish, user_topic
from .revocation import disconnect
from .routing import include_topics, re_topic, topic

__all__ = ["Channel", "ChannelError", "channel_socket", "disconnect", "Forbidden", "History", "OverBudget",
           "include_topics", "notify", "publish", "re_topic", "topic", "user_topic"]
