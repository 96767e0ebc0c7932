"""A worker's own status pages, answered before Django (nginx denies them from outside):
`/healthz` (JSON; 503 when the broker is down or a background loop is not running) and
`/metrics` (Prometheus text)."""

import json

from . import metrics
from ..fanout.brokers import get_broker
from .connections import open_connections
from ..supervisor import supervisor

PATHS = ("/healthz", "/metrics")


def health():
    """(healthy, the /healthz document)."""
    broker = get_broker()
    healthy = broker.connected and supervisor.healthy
    return healthy, {"status": "ok" if healthy else "degraded", **broker.health(),
                     "connections": len(open_connections), "loops": supervisor.report(),
                     "tasks": dict(supervisor.tasks)}


def page(path):
    """(status line, headers, body bytes) of one of PATHS."""
    if path == "/metrics":
        body = metrics.render()
        return "200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                          ("Content-Length", str(len(body)))], body
    healthy, document = health()
    body = json.dumps(document).encode()
    return "200 OK" if healthy else "503 Service Unavailable", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body
