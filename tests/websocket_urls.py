"""WEBSOCKET_URLCONF for tests that need views of their own: the real routes plus test views."""

import functools

import gevent
from django.http import HttpResponseForbidden
from django.urls import path

from realtime.decorators import websocket
from realtime.fanout.hub import text_frame
from websocket_urls import topicpatterns  # noqa: F401  (the same topics on /socket/)
from websocket_urls import urlpatterns as real_urlpatterns


@websocket
def two_senders(request, ws):
    """Two greenlets send 200 messages of 64 KiB each on one connection at the same time."""

    def send_all(sender):
        for seq in range(200):
            head = f"{sender}:{seq:03d}:".encode()
            ws.send(head + sender.encode() * (65536 - len(head)))

    gevent.joinall([gevent.spawn(send_all, "a"), gevent.spawn(send_all, "b")], raise_error=True)
    ws.receive()  # until the client closes


@websocket
def frames_without_waiting(request, ws):
    """Sends 64 KiB text frames as fan-out does (send_frame: never waits, never yields) until the
    worker closes the connection for it (its send queue overflows), then waits for the client."""
    frame = text_frame(b"x" * 65536)
    ws.accept()
    while ws.send_frame(frame):
        pass
    ws.receive()


@websocket
def bytes_as_text(request, ws):
    """gevent-websocket put the repr "b'caf\\xc3\\xa9'" on the wire for this."""
    ws.send("café".encode(), binary=False)
    ws.receive()


@websocket
def db_then_wait(request, ws):
    """Uses the ORM, then waits for the client; reports whether it still holds a database connection."""
    from django.contrib.auth.models import User
    from django.db import connection

    User.objects.count()
    held_before = connection.connection is not None
    ws.receive()
    ws.send(f"before wait: {'held' if held_before else 'none'}; while waiting: "
            f"{'held' if connection.connection is not None else 'released'}")
    ws.receive()


@websocket
def busy_then_reply(request, ws):
    """Sends "busy", reads nothing for 2 s (the client's pongs wait unread), then sends "done"."""
    ws.send("busy")
    gevent.sleep(2)
    ws.send("done")
    ws.receive()


@websocket
def slow_query(request, ws):
    """On any message, runs a query that takes 1 s on PostgreSQL, then sends "slept"."""
    from django.db import connection

    ws.receive()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(1)")
    ws.send("slept")
    ws.receive()


class DeliveryThatRaisesOnce:
    """Stands in for a connection whose delivery fails with an unexpected error, once: the broker
    listener that hands it a message dies of it (the supervisor's test hook)."""

    def __init__(self):
        self.failed = False

    def accept(self):
        pass

    def send_frame(self, frame):
        if not self.failed:
            self.failed = True
            raise RuntimeError("test hook: a delivery that raises")


@websocket
def break_broker_listener(request, ws):
    """Subscribes a delivery that raises to the channel `test:poison`, says "armed", and keeps it
    subscribed until the client leaves. A message published there then kills the broker listener."""
    from realtime.fanout.hub import get_hub

    with get_hub().subscribe("test:poison", DeliveryThatRaisesOnce()):
        ws.send("armed")
        ws.receive()


class LivenessCheckThatRaisesOnce:
    """Sits among the open connections like one; its first liveness check raises, which kills the
    connection sweeper (the supervisor's test hook)."""

    def __init__(self):
        self.failed = False

    def check_liveness(self, *args):
        if not self.failed:
            self.failed = True
            raise RuntimeError("test hook: a liveness check that raises")

    def close(self, code, reason):
        pass


@websocket
def break_connection_sweeper(request, ws):
    """Puts a liveness check that raises among the open connections, says "armed", and takes it out when the
    client leaves."""
    from realtime.server.connections import open_connections

    member = LivenessCheckThatRaisesOnce()
    open_connections.add(member)
    try:
        ws.send("armed")
        ws.receive()
    finally:
        open_connections.discard(member)


@websocket
def fail_after_hello(request, ws):
    """Says "hello", then raises: the bug of a view, after its socket was accepted."""
    ws.send("hello")
    raise RuntimeError("test hook: a view that fails")


@websocket
def slow_accept(request, ws):
    """Takes 1.5 s before it first uses the socket (a join that waits for the database, say): its
    handshake stays in flight meanwhile."""
    gevent.sleep(1.5)
    ws.send("accepted")
    ws.receive()


def refuse_without_pass(view):
    """A decorator over a @websocket view, as login_required would be: no ?pass=1, a 403."""

    @functools.wraps(view)  # copies the @websocket wrapper's attributes, as such decorators do
    def guarded(request, *args, **kwargs):
        if request.GET.get("pass") != "1":
            return HttpResponseForbidden("No pass.\n", content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return guarded


@refuse_without_pass
@websocket(max_message_size=16)
def guarded_echo(request, ws):
    """Echoes, behind a decorator of its own and with a 16-byte limit."""
    while (message := ws.receive()) is not None:
        ws.send(message)


@websocket
def collect_garbage(request, ws):
    """A full garbage collection now, as CPython starts one when enough objects survived."""
    import gc

    ws.send(str(gc.collect()))
    ws.receive()


urlpatterns = real_urlpatterns + [
    path("test/collect-garbage/", collect_garbage),
    path("test/guarded-echo/", guarded_echo),
    path("test/break-connection-sweeper/", break_connection_sweeper),
    path("test/break-broker-listener/", break_broker_listener),
    path("test/slow-accept/", slow_accept),
    path("test/fail-after-hello/", fail_after_hello),
    path("test/slow-query/", slow_query),
    path("test/busy-then-reply/", busy_then_reply),
    path("test/db-then-wait/", db_then_wait),
    path("test/two-senders/", two_senders),
    path("test/frames-without-waiting/", frames_without_waiting),
    path("test/bytes-as-text/", bytes_as_text),
]
