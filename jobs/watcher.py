"""Jobs without Redis: the task worker (`manage.py db_worker`) runs jobs in its own process, which
the in-process broker cannot leave. ONE greenlet per websocket worker process then reads the jobs
that are changing from the database every JOB_POLL_SECONDS, while a jobs socket is open, and hands
each change to the hub on the job's channels, as if it had been published.
With Redis this module is not used.
"""

from contextlib import contextmanager

import gevent
from django.db import connection

from realtime.fanout.hub import get_hub
from realtime.supervisor import supervisor

from .models import Job
from .services import channels_of, job_event

JOB_POLL_SECONDS = 0.5

_watcher = None
_sockets = 0  # open jobs sockets that need it: no queries while there are none


@contextmanager
def watching_database(needed=True):
    """While the block runs (a jobs socket is open), this process's database watcher reads job changes."""
    global _watcher, _sockets
    if not needed:
        yield
        return
    if _watcher is None:
        _watcher = supervisor.spawn("jobs-watcher", poll_forever)
    _sockets += 1
    try:
        yield
    finally:
        _sockets -= 1


def poll_forever():
    versions = {}  # job id -> the version last handed on, for the jobs that may still change
    while True:
        gevent.sleep(JOB_POLL_SECONDS)
        if not _sockets:
            continue  # nobody watches: no queries
        try:
            hub, seen = get_hub(), {}
            for job in Job.objects.changing():
                seen[job.id] = job.version
                if versions.get(job.id) != job.version:
                    for channel in channels_of(job):
                        hub.deliver_here(channel, job_event(job).encode())
            versions = seen
        finally:
            connection.close()  # not kept between polls, nor after a failed one
