"""Tasks a dead task worker left "running": retried, or failed after JOB_MAX_ATTEMPTS runs.

django-tasks-db marks a task RUNNING when a worker claims it and never looks at it again: a worker
killed in the middle (SIGKILL, out of memory, a power cut, a deploy that outlasted the stop
timeout) leaves it RUNNING for good, and its job's page would show "running" forever. A worker id
runs one task at a time, so when a worker starts, any task still RUNNING under its own id is one
that its previous life died in: `db_worker` (jobs/management/commands/db_worker.py) settles those
first. That needs a stable `--worker-id`: the systemd unit and `make run` give one per host.

Retry, not fail, is the default choice: the demo job can run again from its start, and a
deploy should not fail the jobs it interrupts. Failing after a few attempts keeps a job that
kills its worker every time (out of memory, say) from doing it forever.
"""

import logging

from django.db import transaction
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from . import conf
from .models import Job
from .services import report

log = logging.getLogger("jobs")


class WorkerDied(Exception):
    """What a task's result records when its worker died during its last allowed attempt."""


def recover_tasks_left_running(worker_id, backend_name):
    """Retry (or fail) every task `worker_id` was running when it died; returns how many."""
    left = [result for result in DBTaskResult.objects.running().filter(backend_name=backend_name)
            if result.worker_ids[-1:] == [worker_id]]
    for result in left:
        settle(result)
    return len(left)


def settle(result):
    attempts, limit = len(result.worker_ids), conf.get("JOB_MAX_ATTEMPTS")
    with transaction.atomic():
        job = Job.objects.filter(task_id=str(result.id)).first()
        if attempts < limit:
            log.warning("task %s: its worker died during attempt %d of %d; queued again", result.id, attempts, limit)
            result.status = TaskResultStatus.READY
            result.save(update_fields=["status"])
            if job:
                report(job, state=Job.QUEUED, progress=0,
                       detail=f"The task worker stopped during attempt {attempts} of {limit}: queued again.")
        else:
            reason = f"The task worker stopped during each of {attempts} attempts: given up."
            log.warning("task %s: %s", result.id, reason)
            result.set_failed(WorkerDied(reason))
            if job:
                report(job, state=Job.FAILED, detail=reason)
