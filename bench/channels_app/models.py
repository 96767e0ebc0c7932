from django.db import models


class Message(models.Model):
    """The same write as our chat's Message: one row per message posted."""

    room = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=32)
    color = models.CharField(max_length=7)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
