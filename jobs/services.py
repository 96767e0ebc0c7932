"""Starting a job outside the request, and reporting its progress: stored first, then published.

The job runs in a thread of the page server's process, so the POST that starts it returns at
once. A demo choice: a job dies with its process (a deploy, a crash) and then stays "running";
a real deployment would hand jobs to a task queue, whose workers report the same way.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction

from realtime.broker import BrokerUnavailable, publish
from realtime.envelope import envelope

from .models import Job

log = logging.getLogger("jobs")

CHANNEL = "jobs"


def report(job, **changes):
    """Change a job, store it (its last state, for pages opened later), then tell every page."""
    for field, value in changes.items():
        setattr(job, field, value)
    job.version += 1
    job.save()
    try:
        publish(CHANNEL, envelope("job", job.as_event_data()))
    except BrokerUnavailable:
        log.warning("job %s: progress stored but not published: the broker is unavailable", job.id)


def start_job(steps, fail=False):
    """Create a job and run it in a thread once the job row is committed; returns the job."""
    job = Job()
    report(job)
    fail_at = steps // 2 + 1 if fail else None
    transaction.on_commit(lambda: threading.Thread(
        target=run_job, args=(job.id, steps, fail_at), name=f"job-{job.id}", daemon=True).start())
    return job


def run_job(job_id, steps, fail_at=None):
    """The demo job: `steps` steps of JOB_STEP_SECONDS each; step `fail_at` raises."""
    job = Job.objects.get(id=job_id)
    try:
        report(job, state=Job.RUNNING, detail=f"Step 0 of {steps}")
        for step in range(1, steps + 1):
            time.sleep(settings.JOB_STEP_SECONDS)  # the work
            if step == fail_at:
                raise RuntimeError(f"Step {step} of {steps} failed (as asked).")
            report(job, progress=100 * step // steps, detail=f"Step {step} of {steps}")
        report(job, state=Job.DONE, detail="Done.")
    except Exception as error:
        log.warning("job %s failed: %s", job_id, error)
        report(job, state=Job.FAILED, detail=str(error)[:200])
    finally:
        connection.close()  # this thread's own connection
