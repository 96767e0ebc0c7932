"""The jobs feed: every recent job's state at once, then each change as it happens.

Protocol (docs/protocol.md): the server sends `job` events; the client sends only `ping`.
A client shows, per job, the event with the highest `version`: a live update published while
the current states were being read may arrive after them, and is then older news.
"""

import logging

import gevent
from django.db import connection

from realtime.fanout.brokers import get_broker
from realtime.decorators import websocket
from realtime.envelope import ClientError, receive_events
from realtime.fanout.hub import get_hub

from .models import Job
from .services import CHANNEL
from .watcher import watch_database

log = logging.getLogger("jobs")


@websocket
def job_feed(request, ws):
    if not get_broker().reaches_other_processes:
        watch_database()  # jobs run in the task worker's process: without Redis they cannot reach us
    with get_hub().subscribe(CHANNEL, ws) as subscription:
        # What was published while the broker was away is lost: send the stored states again.
        subscription.on_resync = replay.request
        for job in Job.objects.recent():
            ws.send(job.as_event())
        for event, _data in receive_events(ws):
            ws.send(ClientError("unknown_event", f"Unknown event {event!r}; this route only accepts 'ping'.").as_event())


class Replay:
    """After a broker reconnect: the recent jobs' stored states, read ONCE for the whole process and
    handed to every local watcher. Each watcher's resync only asks for it (called from the
    broker's listener, which must not wait on the database or fail), so 10,000 watchers cost one
    query. Asked again while it runs, it runs once more: what it read may predate that reconnect.
    """

    def __init__(self):
        self.greenlet = None
        self.again = False

    def request(self):
        if self.greenlet is not None and not self.greenlet.dead:
            self.again = True
        else:
            self.greenlet = gevent.spawn(self.run)

    def run(self):
        self.again = True
        while self.again:
            self.again = False
            try:
                hub = get_hub()
                for job in Job.objects.recent():
                    hub.deliver_here(CHANNEL, job.as_event().encode())
            except Exception:
                log.exception("jobs feed: could not replay the recent jobs after a broker reconnect")
            finally:
                connection.close()  # this greenlet's own connection, not kept


replay = Replay()
