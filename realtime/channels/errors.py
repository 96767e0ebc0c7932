"""The errors a channel answers with: the error reply's `code`, `detail`, and anything more it says."""

from ..envelope import ClientError, envelope
from .frames import error_response


class ChannelError(ClientError):
    """An error reply; keyword arguments go into it too (`retry_after=2`, `id=42`)."""

    def __init__(self, code, detail, fields=None, **extra):
        super().__init__(code, detail, fields)
        self.extra = extra

    def as_event(self):
        """As an `error` event of the older framing (a one-topic route): what the reply would say."""
        return envelope("error", error_response(self))


class OverBudget(ChannelError):
    """`rate_limited`: over a budget of the client's (realtime/budgets.py); nothing was done, and it may
    send the same again after `retry_after` seconds. The socket then reads nothing for a moment
    (budgets.hold_off): what a flooding client sends meanwhile waits in the network's buffers."""

    def __init__(self, detail, retry_after, **extra):
        super().__init__("rate_limited", detail, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class Forbidden(ChannelError):
    """A join the channel refuses: the client may not listen to this topic (`detail` says why)."""

    def __init__(self, detail, **extra):
        super().__init__("forbidden", detail, **extra)
