from django.db import models
from django.utils import timezone

from realtime.envelope import envelope, iso_utc

ROOM_NAME_PATTERN = r"[a-z0-9_-]{1,64}"


class Room(models.Model):
    name = models.CharField(max_length=64, unique=True)
    # Private rooms admit logged-in users only, under their account name.
    private = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    # The id of the room's newest message: post_message numbers messages 1, 2, 3, ... from it.
    last_seq = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # The room directory's scan (chat/directory.py, busiest_public_rooms): the public rooms
            # by last_seq, newest first, read in index order up to its limit, never sorted whole.
            models.Index(fields=["-last_seq"], condition=models.Q(private=False), name="chat_room_public_last_seq"),
        ]

    def __str__(self):
        return self.name


class Message(models.Model):
    """A chat message. `seq` is the message id of the protocol: 1, 2, 3, ... in its room, without
    holes (the primary key stays internal)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    name = models.CharField(max_length=32)
    color = models.CharField(max_length=7)
    text = models.TextField()
    created = models.DateTimeField(default=timezone.now)
    # Who sent it, for recognising a resend: "user:<pk>", "client:<the client's id>" or "conn:<member id>".
    sender = models.CharField(max_length=80, blank=True, default="")
    # The sender's id of this message (protocol `nonce`): a resend with the same one is not stored
    # again. Cleared once older than CHAT_NONCE_WINDOW (chat/nonces.py), so the index stays small.
    nonce = models.CharField(max_length=64, null=True, blank=True)
    # The username of the logged-in account that posted it ("": a guest, or server code). Anyone
    # may chat under any name; this mark, set by the server, says whose account it really was.
    account = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            # Also the index that history and resume queries (room, seq > since) use.
            models.UniqueConstraint(fields=["room", "seq"], name="chat_message_room_seq"),
            # A resend is found by this index, not a scan; it holds only messages whose nonce is kept.
            models.UniqueConstraint(fields=["room", "sender", "nonce"], condition=models.Q(nonce__isnull=False),
                                    name="chat_message_room_sender_nonce"),
        ]
        indexes = [
            # The oldest kept nonces of a room, for pruning them a batch at a time (chat/nonces.py).
            models.Index(fields=["room", "seq"], condition=models.Q(nonce__isnull=False),
                         name="chat_message_kept_nonces"),
            # The oldest messages of all rooms, for retention a batch at a time (chat/retention.py).
            models.Index(fields=["created"], name="chat_message_created"),
        ]

    def __str__(self):
        return f"{self.room.name} #{self.seq} {self.name}: {self.text[:40]}"

    def as_event_data(self):
        """The `message` event's data every member gets: never the nonce, which is the sender's alone (with it,
        anyone could send a message under another's nonce and make pages drop theirs in its favour)."""
        data = {"id": self.seq, "room": self.room.name, "name": self.name, "color": self.color,
                "text": self.text, "ts": iso_utc(self.created)}
        if self.account:  # posted by a logged-in user: whose account, whatever the name says
            data["user"] = self.account
        return data

    def as_event(self):
        """The `message` event of this message (docs/protocol.md): published, and read back on a resume."""
        return envelope("message", self.as_event_data())
