"""The jobs feed: the recent states of the jobs you may see at once, then each change as it happens.

Protocol (docs/protocol.md): the server sends `job` events; the client sends only `ping`. A user
sees their own jobs, staff see every job, the anonymous are refused (403): each listens to one
channel (jobs/services.py, channel_for), so nobody is sent what they may not see, and a change
costs two publishes however many pages watch.
A client shows, per job, the event with the highest `version`: a live update published while
the current states were being read may arrive after them, and is then older news.
"""

import logging

import gevent
from django.http import HttpResponseForbidden

from realtime.db import read_user, run_read
from realtime.decorators import websocket
from realtime.envelope import ClientError, receive_events
from realtime.fanout.brokers import get_broker
from realtime.fanout.hub import ChannelWatcher, get_hub

from .models import Job
from .services import channel_for, job_event
from .watcher import watching_database

log = logging.getLogger("jobs")


@websocket
def job_feed(request, ws):
    user = read_user(request)
    channel = channel_for(user)
    if channel is None:
        return HttpResponseForbidden("Log in to see your jobs.\n", content_type="text/plain; charset=utf-8")
    # Without Redis the task worker's publishes cannot reach this process: it reads the database.
    with watching_database(not get_broker().reaches_other_processes), get_hub().subscribe(channel, ws):
        JobsFeed.of(channel, user)  # after a broker reconnect it sends the stored states again
        for job in run_read(lambda: Job.objects.visible_to(user).recent()):
            ws.send(job_event(job))
        for event, _data in receive_events(ws):
            ws.send(ClientError("unknown_event", f"Unknown event {event!r}; this route only accepts 'ping'.").as_event())


class JobsFeed(ChannelWatcher):
    """A jobs channel in this process. After a broker reconnect (what was published meanwhile is
    lost) it reads the recent jobs of the channel ONCE, not once per member, and hands them to its
    members here. Clients keep the highest version per job: a state that comes twice changes nothing."""

    def __init__(self, channel, user):
        self.channel, self.user = channel, user  # a member: the channel's members see what it sees

    @classmethod
    def of(cls, channel, user):
        return get_hub().watcher(channel, lambda: cls(channel, user))

    def reconnected(self):
        gevent.spawn(self.replay)  # called from the broker's listener, which must not wait on the database

    def replay(self):
        try:
            hub = get_hub()
            for job in run_read(lambda: Job.objects.visible_to(self.user).recent()):
                hub.deliver_here(self.channel, job_event(job).encode())
        except Exception:
            log.exception("jobs feed: could not replay %s after a broker reconnect", self.channel)
