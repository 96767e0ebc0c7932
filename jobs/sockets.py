"""The jobs feed: every recent job's state at once, then each change as it happens.

Protocol (docs/protocol.md): the server sends `job` events; the client sends only `ping`.
A client shows, per job, the event with the highest `version`: a live update published while
the current states were being read may arrive after them, and is then older news.
"""

from realtime.broker import get_broker
from realtime.decorators import websocket
from realtime.envelope import ClientError, envelope, receive_events
from realtime.hub import get_hub

from .models import Job
from .services import CHANNEL
from .watcher import watch_database


@websocket
def job_feed(request, ws):
    if get_broker().kind == "in-process":
        watch_database()  # jobs run in the page server's process: without Redis they cannot reach us
    with get_hub().subscribe(CHANNEL, ws):
        for job in Job.objects.recent():
            ws.send(envelope("job", job.as_event_data()))
        for event, _data in receive_events(ws):
            ws.send(ClientError("unknown_event", f"Unknown event {event!r}; this route only accepts 'ping'.").as_event())
