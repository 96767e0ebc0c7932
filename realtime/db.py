from django.db import connections


def release_db_connections():
    """Close this greenlet's idle database connections before it waits on a socket.

    Under gevent every greenlet has its own connections; a WebSocket view that used the ORM
    would otherwise hold one for the socket's whole life.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close()
