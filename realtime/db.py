"""No WebSocket holds a database connection while it waits.

Under gevent every greenlet has its own database connections. A WebSocket view that used the ORM
would keep one for the socket's whole life; the connection calls `release_db_connections` before
each blocking read. It must cost nothing for the many views that never touch the database, so a
`connection_created` signal marks the greenlet that opened one.
"""

from django.db import connections
from django.db.backends.signals import connection_created
from greenlet import getcurrent


def _mark_greenlet(sender, connection, **kwargs):
    getcurrent().realtime_db_open = True


connection_created.connect(_mark_greenlet)


def release_db_connections():
    """Close this greenlet's idle database connections (those not inside a transaction)."""
    current = getcurrent()
    if not getattr(current, "realtime_db_open", False):
        return
    still_open = False
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.in_atomic_block:
            still_open = True
        else:
            connection.close()
    current.realtime_db_open = still_open
