"""The jobs' one-topic route `/jobs/`: everyone's jobs (JobsChannel, jobs/channels.py) on a socket of
its own, in the older framing (docs/protocol.md, Background jobs): the recent jobs' states as `job`
events on connect, then every change. Anyone may watch here, as before the jobs' topics existed.
The client sends only `ping`.
"""

from realtime.channels.legacy import OneTopicSocket
from realtime.db import read_user
from realtime.decorators import websocket
from realtime.envelope import envelope

from .channels import ALL_JOBS_TOPIC, JobsChannel


class EveryonesJobs(JobsChannel):
    def may_watch(self):
        return True


class JobsSocket(OneTopicSocket):
    def joined(self, response):
        for job in response["jobs"]:
            self.ws.send(envelope("job", job))


@websocket
def job_feed(request, ws):
    socket = JobsSocket(request, ws, read_user(request))
    socket.serve(EveryonesJobs(socket, ALL_JOBS_TOPIC, {}), {})
