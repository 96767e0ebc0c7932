from django.db import models
from django.utils import timezone

ROOM_NAME_PATTERN = r"[a-z0-9_-]{1,64}"


class Room(models.Model):
    name = models.CharField(max_length=64, unique=True)
    # Private rooms admit logged-in users only, under their account name.
    private = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name


class Message(models.Model):
    """A chat message. Its id is the message id of the protocol: unique and increasing in a room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    name = models.CharField(max_length=32)
    color = models.CharField(max_length=7)
    text = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"])]

    def __str__(self):
        return f"{self.room.name} #{self.id} {self.name}: {self.text[:40]}"

    def as_event_data(self):
        return {"id": self.id, "room": self.room.name, "name": self.name, "color": self.color,
                "text": self.text, "ts": self.created.isoformat().replace("+00:00", "Z")}
