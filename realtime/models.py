from django.conf import settings
from django.db import models


class IssuedToken(models.Model):
    """A token issued to a logged-in session (realtime/channels/tokens.py): which session, so that
    the token dies with it. The token carries only this row's random id, never the session key."""

    id = models.CharField(primary_key=True, max_length=32)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40)
    expires = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"token {self.id} of user {self.user_id}, until {self.expires}"
