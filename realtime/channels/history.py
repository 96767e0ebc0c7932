"""What a joiner of a topic with history is sent before live pushes, framed once for all joiners."""

from dataclasses import dataclass, field
from typing import NamedTuple

from ..fanout.hub import on_topic, text_frame


@dataclass(frozen=True)
class History:
    """Publications of a topic, `(offset, event text)` in offset order, and `resync`: why the joiner's
    `since` could not be honoured ("too_far_behind", "unknown_since"; None when it was)."""

    messages: list
    frames: tuple  # the events as frames, as published (a one-topic socket's)
    resync: str | None = None
    # topic_head -> the frames as pushes of that topic, with their offsets: made once, for every joiner
    on_topics: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, messages, resync=None):
        return cls(messages, tuple(text_frame(text.encode()) for _, text in messages), resync)

    def frames_for(self, head):
        """The frames of this history for a member whose pushes start with `head` (None: as published)."""
        if head is None:
            return self.frames
        frames = self.on_topics.get(head)
        if frames is None:
            frames = self.on_topics[head] = tuple(
                text_frame(on_topic(head, text.encode(), offset)) for offset, text in self.messages)
        return frames


class Resume(NamedTuple):
    """Where a joiner of a topic with history stands after its history: in the join's reply."""

    offset: int  # the last offset it was sent (or has): its resume point
    recovered: bool  # it has every publication after its `since`
    reason: str | None  # why not, when it asked with `since`

    def reply(self):
        fields = {"offset": self.offset, "recovered": self.recovered}
        if self.reason is not None:
            fields["reason"] = self.reason
        return fields
