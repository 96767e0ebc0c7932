from django.db import models


class ApiKey(models.Model):
    """A key of the server API (realtime/api/keys.py). The key `rtk_<prefix>_<secret>` is shown once,
    when it is made; the row keeps the prefix (to find it) and a SHA-256 of the secret, never the secret."""

    name = models.CharField(max_length=100, help_text="Who uses it: 'billing service', 'nightly cron'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    topics = models.TextField(
        help_text="The topics it may publish to and read, space-separated; a trailing * matches any rest "
                  "(user:* chat:lobby). notify reaches user:<id>.")
    may_disconnect = models.BooleanField(
        default=False, help_text="It may end a user's sessions (disconnect), for the users its topics admit.")
    created = models.DateTimeField(auto_now_add=True)
    revoked = models.DateTimeField(null=True, blank=True, help_text="Set: the key is refused from then on.")

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} (rtk_{self.prefix}_...)"

    @property
    def patterns(self):
        return self.topics.split()
