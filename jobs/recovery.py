"""Tasks a dead task worker left "running": retried, or failed after JOB_MAX_ATTEMPTS runs.

django-tasks-db marks a task RUNNING when a worker claims it and never looks at it again: a worker
killed in the middle (SIGKILL, out of memory, a power cut, a deploy that outlasted the stop
timeout) leaves it RUNNING for good, and its job's page would show "running" forever. Two ways
out. A worker id runs one task at a time, so when a worker starts, any task still RUNNING under
its own id is one that its previous life died in: `db_worker` (jobs/management/commands/
db_worker.py) settles those first (that needs a stable `--worker-id`: the systemd unit and `make
run` give one per host). And a worker that never comes back under its id (a container replaced,
a host renamed) stops beating its task's heartbeat: any live worker settles that task once the
heartbeat is JOB_HEARTBEAT_TIMEOUT old (jobs/worker.py).

Retry, not fail, is the default choice: the demo job can run again from its start, and a
deploy should not fail the jobs it interrupts. Failing after a few attempts keeps a job that
kills its worker every time (out of memory, say) from doing it forever.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from . import conf
from .models import Job, TaskHeartbeat
from .services import report

log = logging.getLogger("jobs")


class WorkerDied(Exception):
    """What a task's result records when its worker died during its last allowed attempt."""


def recover_tasks_left_running(worker_id, backend_name):
    """Retry (or fail) every task `worker_id` was running when it died; returns how many."""
    left = [result for result in DBTaskResult.objects.running().filter(backend_name=backend_name)
            if result.worker_ids[-1:] == [worker_id]]
    return sum(settle(result) for result in left)


def recover_tasks_of_vanished_workers(backend_name, timeout):
    """Retry (or fail) every task RUNNING without a heartbeat for `timeout` s; returns how many."""
    since = timezone.now() - timedelta(seconds=timeout)
    silent = DBTaskResult.objects.running().filter(backend_name=backend_name).filter(
        Q(heartbeat__beat__lt=since) | Q(heartbeat=None, started_at__lt=since))
    return sum(settle(result, f"no heartbeat for {timeout:g} s") for result in silent)


def settle(result, why="its worker died"):
    """Queue again, or fail, a task whose worker is gone: once, and only if nobody did meanwhile
    (another worker's sweep, or its own worker restarting). Returns whether it did."""
    limit, attempt = conf.get("JOB_MAX_ATTEMPTS"), result.worker_ids
    with transaction.atomic():
        result = DBTaskResult.objects.select_for_update().filter(pk=result.pk, status=TaskResultStatus.RUNNING).first()
        if result is None or result.worker_ids != attempt:  # settled, or claimed again, meanwhile
            return False
        attempts = len(result.worker_ids)
        TaskHeartbeat.objects.filter(task=result).delete()
        job = Job.objects.filter(task_id=str(result.id)).first()
        if attempts < limit:
            log.warning("task %s: %s during attempt %d of %d; queued again", result.id, why, attempts, limit)
            result.status = TaskResultStatus.READY
            result.save(update_fields=["status"])
            if job:
                report(job, state=Job.QUEUED, progress=0,
                       detail=f"The task worker stopped during attempt {attempts} of {limit}: queued again.")
        else:
            reason = f"The task worker stopped during each of {attempts} attempts: given up."
            log.warning("task %s: %s; %s", result.id, why, reason)
            result.set_failed(WorkerDied(reason))
            if job:
                report(job, state=Job.FAILED, detail=reason)
    return True
