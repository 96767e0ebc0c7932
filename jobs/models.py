from django.db import models
from django.utils import timezone

RECENT = 10


class JobQuerySet(models.QuerySet):
    def recent(self):
        """The jobs a page shows, oldest first."""
        return list(self.order_by("-id")[:RECENT])[::-1]


class Job(models.Model):
    """A long-running job and its LAST state: what a page opened in the middle of it shows."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(QUEUED, "queued"), (RUNNING, "running"), (DONE, "done"), (FAILED, "failed")]

    state = models.CharField(max_length=8, choices=STATES, default=QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    detail = models.CharField(max_length=200, blank=True)
    # Bumped on every change: a client keeps the highest it saw and ignores older news.
    version = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"job {self.id}: {self.state} {self.progress}%"

    @property
    def finished(self):
        return self.state in (self.DONE, self.FAILED)

    def as_event_data(self):
        return {"id": self.id, "state": self.state, "progress": self.progress, "detail": self.detail,
                "version": self.version, "updated": self.updated.isoformat().replace("+00:00", "Z")}
