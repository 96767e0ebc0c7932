"""gunicorn config for the page server: gunicorn -c deploy/gunicorn_http.py project.wsgi:application

Every value can be set from the environment; `--bind` on the command line wins over HTTP_BIND.
It runs behind nginx (deploy/nginx.conf), which buffers slow clients and serves /static/.
"""

import os

bind = os.environ.get("HTTP_BIND", "127.0.0.1:8000")
# Threads let one process overlap requests that wait on the database; the processes use the cores.
worker_class = "gthread"
workers = int(os.environ.get("HTTP_WORKERS", "2"))
threads = int(os.environ.get("HTTP_THREADS", "4"))
# A worker whose main loop stops for this long is killed and replaced.
timeout = int(os.environ.get("HTTP_TIMEOUT", "30"))
# On SIGTERM requests in progress get this long to finish (the systemd unit waits a bit longer).
graceful_timeout = int(os.environ.get("HTTP_GRACEFUL_TIMEOUT", "10"))
accesslog = os.environ.get("HTTP_ACCESS_LOG", "-")
# The client's address is in X-Forwarded-For (set by nginx): log it, not only nginx's.
access_log_format = '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "realtime-http"
# As in gunicorn_ws.py: the control socket's fixed per-user path would clash between masters.
control_socket_disable = True
