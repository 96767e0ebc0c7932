"""Jobs without Redis: the task worker (`manage.py db_worker`) runs jobs in its own process, which
the in-process broker cannot leave. ONE greenlet per websocket worker process then reads the
recent jobs from the database every JOB_POLL_SECONDS and hands each change to the hub, as if it
had been published.
With Redis this module is not used.
"""

import gevent
from django.db import connection

from realtime.fanout.hub import get_hub
from realtime.supervisor import supervisor

from .models import Job
from .services import CHANNEL

JOB_POLL_SECONDS = 0.5

_watcher = None


def watch_database():
    """Start this process's database watcher (once)."""
    global _watcher
    if _watcher is None:
        _watcher = supervisor.spawn("jobs-watcher", poll_forever)


def poll_forever():
    versions = {}  # job id -> the version last handed on
    while True:
        gevent.sleep(JOB_POLL_SECONDS)
        hub = get_hub()
        if not hub.has_members(CHANNEL):
            continue  # nobody watches: no queries
        try:
            for job in Job.objects.recent():
                if versions.get(job.id) != job.version:
                    versions[job.id] = job.version
                    hub.deliver_here(CHANNEL, job.as_event().encode())
        finally:
            connection.close()  # not kept between polls, nor after a failed one
