"""The errors a channel answers with: the error reply's `code`, `detail`, and anything more it says."""

from ..envelope import ClientError


class ChannelError(ClientError):
    """An error reply; keyword arguments go into it too (`retry_after=2`, `id=42`)."""

    def __init__(self, code, detail, fields=None, **extra):
        super().__init__(code, detail, fields)
        self.extra = extra


class Forbidden(ChannelError):
    """A join the channel refuses: the client may not listen to this topic (`detail` says why)."""

    def __init__(self, detail, **extra):
        super().__init__("forbidden", detail, **extra)
