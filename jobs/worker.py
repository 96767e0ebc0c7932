"""What the task worker (`manage.py db_worker`) does besides running tasks, one task at a time.

- **Heartbeat.** While a task runs, a thread of the worker stamps its TaskHeartbeat every
  JOB_HEARTBEAT_TIMEOUT / 4 s.
- **Sweep.** The same thread looks for tasks RUNNING whose heartbeat is older than
  JOB_HEARTBEAT_TIMEOUT: their worker is gone. A worker that restarts under its own id settles
  what it left (jobs/recovery.py), but one that never comes back under that id (a container
  replaced, a host renamed) would leave its task "running", counting against its owner's limit,
  forever. Any live worker queues it again (or fails it after JOB_MAX_ATTEMPTS runs) instead.
- **Time limit.** A task that runs longer than JOB_TIME_LIMIT gets TaskTimeLimit raised in it by
  an alarm (SIGALRM: it interrupts a sleep or a wait too), and fails. Signals reach only the main
  thread: with --reload (development) tasks run in another one and are not timed.
- **Periodic tasks** get their next run queued when the worker starts and whenever one ends
  (jobs/periodic.py).
A task may thus run twice (its worker only looked gone): tasks must not mind (jobs/tasks.py).
"""

import logging
import signal
import threading

from django.db import connection
from django.utils import timezone
from django_tasks_db.compat import task_finished, task_started

from . import conf
from .models import TaskHeartbeat
from .periodic import periodic_tasks, schedule_periodic
from .recovery import recover_tasks_of_vanished_workers

log = logging.getLogger("jobs")


class TaskTimeLimit(Exception):
    """Raised in a task that ran longer than JOB_TIME_LIMIT."""


class Housekeeper:
    """The duties above for one task worker process, from `start()` until `stop()`."""

    def __init__(self, worker_id, backend_name):
        self.worker_id, self.backend_name = worker_id, backend_name
        self.running = None  # the id of the task being run, while it runs
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.beat_and_sweep, name="task-heartbeat", daemon=True)

    def start(self):
        if in_main_thread():
            signal.signal(signal.SIGALRM, self.on_alarm)
        task_started.connect(self.started, weak=False)
        task_finished.connect(self.finished, weak=False)
        schedule_periodic(self.backend_name)
        self.thread.start()

    def stop(self):
        self.stopped.set()
        task_started.disconnect(self.started)
        task_finished.disconnect(self.finished)

    # The signals are sent inside django-tasks-db's run_task: what fails here is logged, never the
    # task's failure (the next beat writes the heartbeat; the next start schedules the periodic task).

    def started(self, sender, task_result, **kwargs):
        self.running = task_result.id
        if in_main_thread():
            signal.setitimer(signal.ITIMER_REAL, conf.get("JOB_TIME_LIMIT"))
        self.logging_failures(TaskHeartbeat.objects.update_or_create, task_id=task_result.id,
                              defaults={"worker_id": self.worker_id, "beat": timezone.now()})

    def finished(self, sender, task_result, **kwargs):
        if in_main_thread():
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.running = None
        self.logging_failures(lambda: TaskHeartbeat.objects.filter(task_id=task_result.id).delete())
        if task_result.task.module_path in periodic_tasks():
            self.logging_failures(schedule_periodic, self.backend_name, [task_result.task.module_path])

    def logging_failures(self, action, *args, **kwargs):
        try:
            action(*args, **kwargs)
        except Exception:
            log.exception("task worker %s: housekeeping failed", self.worker_id)

    def on_alarm(self, signum, frame):
        if self.running is not None:  # else the task ended as the alarm went off
            raise TaskTimeLimit(f"ran longer than the time limit of {conf.get('JOB_TIME_LIMIT'):g} s")

    def beat_and_sweep(self):
        timeout = conf.get("JOB_HEARTBEAT_TIMEOUT")
        while not self.stopped.wait(timeout / 4):
            try:
                running = self.running
                if running is not None:
                    TaskHeartbeat.objects.filter(task_id=running).update(beat=timezone.now())
                recover_tasks_of_vanished_workers(self.backend_name, timeout)
            except Exception:
                log.exception("task worker %s: heartbeat or sweep failed; again in %g s", self.worker_id, timeout / 4)
            finally:
                connection.close()  # this thread's own; opened again in a few seconds


def in_main_thread():
    return threading.current_thread() is threading.main_thread()
