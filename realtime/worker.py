"""The gunicorn worker class by the name deployments give it: `-k realtime.worker.WebSocketWorker`.

It lives in `realtime/server/worker.py`. gunicorn imports this before gevent patches the worker
process, so nothing else is imported here.
"""

from .server.worker import WebSocketWorker

__all__ = ["WebSocketWorker"]
