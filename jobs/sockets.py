"""The jobs' one-topic route `/jobs/`: the jobs its user may see (JobsChannel, jobs/channels.py) on a
socket of its own, in the older framing (docs/protocol.md, Background jobs): the recent jobs' states
as `job` events on connect, then every change. A user sees their own jobs, staff every job; an
anonymous socket is refused (403). The client sends only `ping`.
"""

from django.http import HttpResponseForbidden

from realtime.channels.legacy import OneTopicSocket
from realtime.db import read_user
from realtime.decorators import websocket
from realtime.envelope import envelope

from .channels import ALL_JOBS_TOPIC, JobsChannel, user_jobs_topic


class JobsSocket(OneTopicSocket):
    def joined(self, response):
        for job in response["jobs"]:
            self.ws.send(envelope("job", job))


@websocket
def job_feed(request, ws):
    user = read_user(request)
    if not user.is_authenticated:
        return HttpResponseForbidden("Log in to watch your jobs.\n", content_type="text/plain; charset=utf-8")
    socket = JobsSocket(request, ws, user)
    if user.is_staff:
        socket.serve(JobsChannel(socket, ALL_JOBS_TOPIC, {}), {})
    else:
        socket.serve(JobsChannel(socket, user_jobs_topic(user.pk), {"user_id": user.pk}), {})
