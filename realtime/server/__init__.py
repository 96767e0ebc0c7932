"""The websocket worker process: the gunicorn worker class, the handshake, Django routing of sockets,
the open connections, background-loop health, garbage collection, /healthz and /metrics.

Nothing is imported here: the worker class is loaded before gevent patches the process."""
