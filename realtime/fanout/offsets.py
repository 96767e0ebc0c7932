"""Which offsets of one channel this process has delivered, so that a message is delivered once.

An offset orders a channel's messages (a chat room's message ids: 1, 2, 3, ... without holes). The
same message can reach a worker twice: published again after a lost reply (a failover), or read from
the database by a catch-up after a broker blip while its publish was still on its way. Clients must
not have to drop those repeats: the worker drops them, for all its members at once.
"""


class DeliveredOffsets:
    """A watermark (every offset up to it was delivered) and the offsets delivered above it, out of
    order (ahead of a hole). At most AHEAD_LIMIT are kept above it: past that the lowest is forgotten,
    so a hole that never fills (a message stored but never published) costs bounded memory; a repeat
    of a forgotten one would go out again."""

    AHEAD_LIMIT = 256
    __slots__ = ("watermark", "ahead")

    def __init__(self, watermark=0):
        self.watermark = watermark
        self.ahead = set()

    def first(self, offset):
        """True the first time `offset` is delivered (and it is recorded), False for a repeat."""
        if offset <= self.watermark or offset in self.ahead:
            return False
        if offset == self.watermark + 1:
            self.watermark = offset
            while self.watermark + 1 in self.ahead:
                self.watermark += 1
                self.ahead.discard(self.watermark)
        else:
            self.ahead.add(offset)
            if len(self.ahead) > self.AHEAD_LIMIT:
                self.ahead.discard(min(self.ahead))
        return True
