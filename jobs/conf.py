"""The jobs application's settings, registered with the layer's (realtime/conf.py): read them with
`conf.get(name)`; their table in docs/settings.md is `python -m realtime.conf jobs.conf`."""

from realtime.conf import Setting, get, register

__all__ = ["SETTINGS", "get"]

SETTINGS = register(
    Setting("JOB_STEP_SECONDS", 0.5, "0.5 s", "how long one step of the demo job (`/jobs/`) takes."),
    Setting("JOB_QUEUE_LIMIT", 20, "20",
            "jobs waiting for the task worker, at most: a start beyond it is refused (503)."),
    Setting("JOB_USER_LIMIT", 3, "3",
            "jobs one user may have queued or running: a start beyond it is refused (429)."),
    Setting("JOB_MAX_ATTEMPTS", 3, "3",
            "runs of one job a task worker may die in: a restarted worker queues its job again until then, "
            "and fails it after (jobs/recovery.py)."),
    Setting("JOB_TIME_LIMIT", 300.0, "300 s",
            "a task running longer than this is stopped and its job fails (jobs/worker.py)."),
    Setting("JOB_HEARTBEAT_TIMEOUT", 60.0, "60 s",
            "a running task whose task worker has not beaten its heartbeat for this long is queued again by "
            "another task worker (its worker vanished: a new container, a renamed host)."),
)
