"""The jobs' tasks (Django's Tasks framework): run by `manage.py db_worker`, not by the page server.

A task may run again from its start: a worker that dies in the middle of it is retried
(jobs/recovery.py), so a task must not mind being run twice.
"""

import logging
import time

from django.db import connection

from . import conf
from .models import Job
from .services import report
from .worker import TaskTimeLimit

try:
    from django.tasks import task  # Django 6.0 and later
except ImportError:
    from django_tasks import task  # the backport, on Django 5.2

log = logging.getLogger("jobs")


@task()
def run_job(job_id, steps, fail_at=None):
    """The demo job: `steps` steps of JOB_STEP_SECONDS each; step `fail_at` raises.

    Its owner sees that it failed and where, never the exception: that, with its traceback, is for
    the log (and the task's result, in the admin)."""
    job = Job.objects.get(id=job_id)
    report(job, state=Job.RUNNING, progress=0, detail=f"Step 0 of {steps}")
    step = 0
    try:
        for step in range(1, steps + 1):
            time.sleep(conf.get("JOB_STEP_SECONDS"))  # the work
            if step == fail_at:
                raise RuntimeError(f"Step {step} of {steps} failed (as asked).")
            report(job, progress=100 * step // steps, detail=f"Step {step} of {steps}")
    except TaskTimeLimit as limit:
        log.warning("job %s stopped at step %d of %d: it %s", job_id, step, steps, limit)
        connection.close()  # the alarm may have come in the middle of a query: a fresh connection
        report(job, state=Job.FAILED, detail=f"Stopped at step {step} of {steps}: it {limit}.")
        raise
    except Exception:
        log.exception("job %s failed at step %d of %d", job_id, step, steps)
        report(job, state=Job.FAILED, detail=f"Failed at step {step} of {steps}.")
        raise  # the task's result says failed too, with the traceback
    report(job, state=Job.DONE, detail="Done.")
