"""No WebSocket holds a database connection while it waits.

Under gevent every greenlet has its own database connections. A WebSocket view that used the ORM
would keep one for the socket's whole life; the connection calls `release_db_connections` before
each blocking read. It must cost nothing for the many views that never touch the database, so a
`connection_created` signal marks the greenlet that opened one.
"""

import gevent
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from gevent.event import AsyncResult
from gevent.queue import Empty, Queue
from greenlet import getcurrent

from .. import conf


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



class DatabaseReaders:
    """A few greenlets that run reads for many sockets (joins), in turn.

    At most `size` of them (WEBSOCKET_DB_CONCURRENCY), so a join storm never opens more database
    connections than that per process: the others wait in the queue. Each keeps its connection
    between reads (opening one costs more than a small query) and closes it after `idle` s
    without work, or after a read that failed (the connection may be broken).
    """

    def __init__(self, size, idle=5.0):
        self.size, self.idle = size, idle
        self.queue = Queue()
        self.readers = 0

    def run(self, read):
        """`read()` in a reader greenlet; waits for its turn and returns its result (or raises)."""
        result = AsyncResult()
        self.queue.put((read, result))
        if self.readers < self.size:
            self.readers += 1
            gevent.spawn(self._serve)
        return result.get()

    def _serve(self):
        try:
            while True:
                try:
                    read, result = self.queue.get(timeout=self.idle)
                except Empty:
                    return
                try:
                    result.set(read())
                except BaseException as error:  # handed to the caller, who raises it
                    result.set_exception(error)
                    release_db_connections()
        finally:
            self.readers -= 1
            release_db_connections()


_readers = None


def run_read(read):
    """Run `read()` (ORM code) in one of this process's database readers: see DatabaseReaders."""
    global _readers
    if _readers is None:
        _readers = DatabaseReaders(conf.get("WEBSOCKET_DB_CONCURRENCY"))
    return _readers.run(read)


def read_user(request):
    """`request.user`, its session and user rows read in a database reader's turn; at once when the
    request carries no session cookie (then it is anonymous, and nothing is read)."""
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        run_read(lambda: request.user.is_authenticated)
    return request.user
