"""The gunicorn worker class: gevent-websocket's GeventWebSocketWorker with our handler.

Use it as `worker_class = "realtime.worker.WebSocketWorker"` (deploy/gunicorn_ws.py does).
"""

from geventwebsocket.gunicorn.workers import GeventWebSocketWorker


class WebSocketWorker(GeventWebSocketWorker):
    def patch(self):
        super().patch()
        # Import Django-facing code only after gevent has patched the standard library, in the
        # worker process: Django's per-thread state must become per-greenlet.
        from .handler import WebSocketHandler

        self.wsgi_handler = WebSocketHandler

    def load_wsgi(self):
        super().load_wsgi()
        from .broker import get_broker

        self.log.info("websocket worker %s: %s", self.pid, get_broker().describe())
