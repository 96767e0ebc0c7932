"""Periodic tasks: the task worker keeps the next run of each one queued.

PERIODIC_TASKS (a setting: task path -> seconds) names them. Django's Tasks framework has no
schedule of its own; a task could queue its own next run, but one that failed, or whose worker
died, would end its chain. So the task worker does it (jobs/worker.py): when it starts, and each
time a periodic task ends however it ended, each such task without a run queued or running gets
one, its period after the last run ended (at once if it never ran). Two task workers decide one
at a time (an advisory lock on PostgreSQL, SQLite's write lock), so a task never runs twice over.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from .services import PERIODIC_LOCK, take_lock


def periodic_tasks():
    """{task path: period in seconds}."""
    return getattr(settings, "PERIODIC_TASKS", {})


def schedule_periodic(backend_name, paths=None):
    """Queue the next run of each periodic task (of `paths`, default all) that has none queued or running."""
    for path, period in periodic_tasks().items():
        if paths is not None and path not in paths:
            continue
        with transaction.atomic():
            take_lock(PERIODIC_LOCK)
            runs = DBTaskResult.objects.filter(backend_name=backend_name, task_path=path)
            if runs.filter(status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]).exists():
                continue
            ended = runs.exclude(finished_at=None).order_by("-finished_at").values_list("finished_at", flat=True).first()
            run_after = ended + timedelta(seconds=period) if ended else None
            import_string(path).using(run_after=run_after, backend=backend_name).enqueue()
