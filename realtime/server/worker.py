"""The gunicorn worker class: gevent-websocket's GeventWebSocketWorker with our handler.

Use it as `worker_class = "realtime.worker.WebSocketWorker"` (deploy/gunicorn_ws.py does).
"""

import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker


class WebSocketWorker(GeventWebSocketWorker):
    def patch(self):
        super().patch()
        # Import Django-facing code only after gevent has patched the standard library, in the
        # worker process: Django's per-thread state must become per-greenlet.
        from .handler import RequestHandler, WebSocketServer

        self.server_class = WebSocketServer
        self.wsgi_handler = RequestHandler

    def load_wsgi(self):
        super().load_wsgi()
        from . import metrics
        from ..fanout.brokers import get_broker
        from ..fanout.hub import get_hub
        from .connections import open_connections

        broker = get_broker()
        metrics.install(lambda: len(open_connections), get_broker)
        self.log.info("websocket worker %s: %s", self.pid, broker.describe())
        # The broker connects now, not at the first subscriber: /healthz (a load balancer's
        # readiness check) must not call a worker degraded for having no clients yet.
        hub = get_hub()
        broker.start(hub.dispatch, hub.resync_all)
        skip_database_checks_at_request_start()
        from .collector import collector

        collector.install()

    def run(self):
        super().run()
        # The clients are gone (gracefully or not): announce their leaves now, in one diff per
        # room, rather than letting other workers find them expired PRESENCE_TTL seconds later.
        from .. import runtime
        from . import metrics

        runtime.flush_presence_before_exit()
        metrics.forget_this_process()

    def handle_exit(self, sig, frame):
        """SIGTERM: stop taking clients, then tell every client we are going away (1001) so it
        resumes elsewhere.

        New upgrades get 503 from this moment (gunicorn closes the listening socket only at its
        next tick, up to a second later), so a closed client cannot come straight back here.
        gunicorn then waits up to graceful_timeout for the connections to end.
        """
        super().handle_exit(sig, frame)
        from .. import conf
        from .connections import open_connections
        from ..transport.codes import GOING_AWAY

        open_connections.draining = True
        window = conf.get("CLIENT_RECONNECT_WINDOW")
        gevent.spawn(open_connections.close_all, GOING_AWAY, f"server shutting down; reconnect_window={window:g}")


def skip_database_checks_at_request_start():
    """Every request here runs in a greenlet of its own (one request per connection), whose
    database connections (per greenlet under gevent) do not exist yet: Django's two checks at
    `request_started` find nothing to reset or close, but building the greenlet's connection
    state to find that out is ~5 % of a join. `request_finished` still closes what a view opened."""
    from django.core.signals import request_started
    from django.db import close_old_connections, reset_queries

    request_started.disconnect(reset_queries)
    request_started.disconnect(close_old_connections)
