from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from realtime.envelope import envelope, iso_utc

RECENT = 10


class JobQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The jobs `user` may see: their own; every job for staff; none for the anonymous."""
        if not user.is_authenticated:
            return self.none()
        return self if user.is_staff else self.filter(owner=user)

    def recent(self):
        """The jobs a page shows, oldest first."""
        return list(self.order_by("-id")[:RECENT])[::-1]

    def unfinished(self):
        return self.filter(state__in=(Job.QUEUED, Job.RUNNING))

    def changing(self):
        """The jobs whose state may change, or just did: unfinished, or finished within a minute."""
        return self.filter(models.Q(state__in=(Job.QUEUED, Job.RUNNING))
                           | models.Q(updated__gte=timezone.now() - timedelta(minutes=1)))


class Job(models.Model):
    """A long-running job and its LAST state: what a page opened in the middle of it shows."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(QUEUED, "queued"), (RUNNING, "running"), (DONE, "done"), (FAILED, "failed")]

    state = models.CharField(max_length=8, choices=STATES, default=QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    detail = models.CharField(max_length=200, blank=True)
    # Bumped on every change: a client keeps the highest it saw and ignores older news.
    version = models.PositiveIntegerField(default=0)
    # Who started it (None: started from code, e.g. the shell), and its task in the Tasks framework.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    task_id = models.CharField(max_length=64, blank=True, db_index=True)
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
                "version": self.version, "updated": iso_utc(self.updated)}

    def as_event(self):
        """The `job` event of this state (docs/protocol.md, Jobs): published, sent and replayed alike."""
        return envelope("job", self.as_event_data())

class TaskHeartbeat(models.Model):
    """The last sign of life of a running task's worker (jobs/worker.py): a task RUNNING without a
    recent one belongs to a task worker that is gone, and is queued again (jobs/recovery.py)."""

    task = models.OneToOneField(DBTaskResult, primary_key=True, on_delete=models.CASCADE, related_name="heartbeat")
    worker_id = models.CharField(max_length=64)
    beat = models.DateTimeField()

    def __str__(self):
        return f"task {self.task_id} on {self.worker_id} at {self.beat}"
