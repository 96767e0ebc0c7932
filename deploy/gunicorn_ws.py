"""gunicorn config for the websocket worker: gunicorn -c deploy/gunicorn_ws.py project.wsgi:websocket

Every value can be set from the environment; `--bind` on the command line wins over WS_BIND.
"""

import os

bind = os.environ.get("WS_BIND", "127.0.0.1:8001")
worker_class = "realtime.worker.WebSocketWorker"
workers = int(os.environ.get("WS_WORKERS", "1"))
# gunicorn's default of 1,000 silently caps a gevent worker at 1,000 open sockets.
worker_connections = int(os.environ.get("WS_WORKER_CONNECTIONS", "10000"))
# A gevent worker proves it is alive from its event loop; the default 30 s kills a worker
# whose loop one long operation blocked, dropping every socket on it. 0 is never.
timeout = int(os.environ.get("WS_TIMEOUT", "120"))
# On SIGTERM connections get this long to close before the worker exits.
graceful_timeout = int(os.environ.get("WS_GRACEFUL_TIMEOUT", "10"))
# Sockets live long: keep-alive between requests does not apply.
keepalive = 0
accesslog = os.environ.get("WS_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "realtime-ws"
# gunicorn 27's control socket lives at one fixed path per user: several websocket masters on
# one host (tests, or more than one worker pool) would take it from each other. We do not use it.
control_socket_disable = True


# /metrics with several processes on one port: a scrape reaches one of them, which answers for all
# through prometheus_client's multiprocess files (realtime/server/metrics.py), in a folder of this
# instance's own (another instance on the host must not share it), made fresh at each start.
def on_starting(server):
    if server.cfg.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.metrics_folder = tempfile.mkdtemp(prefix="realtime-metrics-")


def child_exit(server, worker):
    """A worker process ended (a killed one too): its gauges leave the answer."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = getattr(server, "metrics_folder", None)
    if folder:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
