"""No WebSocket holds a database connection while it waits, and sockets take turns for the few
connections a worker opens: joins' reads (`run_read`) and posts' writes (`run_write`).

Under gevent every greenlet has its own database connections. A WebSocket view that used the ORM
would keep one for the socket's whole life; the connection calls `release_db_connections` before
each blocking read. It must cost nothing for the many views that never touch the database, so a
`connection_created` signal marks the greenlet that opened one. And so that a storm of joins or of
posts never opens a connection per socket (nor one per message), the ORM work of sockets runs in a
few greenlets that keep a connection each: `DatabaseTurns`.
"""

import gevent
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.backends.signals import connection_created
from gevent import monkey
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



class DatabaseTurns:
    """A few greenlets that run database work for many sockets, in turn.

    At most `size` of them, so a storm never opens more database connections than that per
    process: the others wait in the queue. Each keeps its connection between turns (opening one
    costs more than a small query) and closes it after `idle` s without work, or after work that
    failed in the database (the connection may be broken; a refused post or an unreachable Redis
    leaves it open). Reads and writes have a pool each (`run_read`,
    `run_write`): posts to one room wait for its row lock, and waiting writers must not hold up
    the joins' reads, nor a join storm the posts.
    """

    def __init__(self, size, idle=5.0):
        self.size, self.idle = size, idle
        self.queue = Queue()
        self.greenlets = 0

    def run(self, work):
        """`work()` in one of these greenlets; waits for its turn and returns its result (or raises)."""
        result = AsyncResult()
        self.queue.put((work, result))
        if self.greenlets < self.size:
            self.greenlets += 1
            gevent.spawn(self._serve)
        return result.get()

    def _serve(self):
        getcurrent().realtime_db_turns = self
        try:
            while True:
                try:
                    work, result = self.queue.get(timeout=self.idle)
                except Empty:
                    return
                try:
                    result.set(work())
                except BaseException as error:  # handed to the caller, who raises it
                    result.set_exception(error)
                    if isinstance(error, DatabaseError) or not isinstance(error, Exception):
                        release_db_connections()
        finally:
            self.greenlets -= 1
            release_db_connections()


_readers = _writers = None


def run_read(read):
    """Run `read()` (ORM code) in one of this process's database readers: see DatabaseTurns."""
    global _readers
    if _readers is None:
        _readers = DatabaseTurns(conf.get("WEBSOCKET_DB_CONCURRENCY"))
    return _readers.run(read)


def run_write(write):
    """Run `write()` (ORM code that writes) in one of this process's database writers, at most
    WEBSOCKET_DB_WRITE_CONCURRENCY at once; returns its result or raises its error.

    It runs in the caller instead where a writer would change what it means: outside a gevent
    worker (a page server's thread, a command: there Django's connections belong to threads, not
    greenlets), inside the caller's transaction (it commits or rolls back with it), or in a
    greenlet that already took its turn (it would wait for itself).
    """
    global _writers
    if (not monkey.is_module_patched("threading") or getattr(getcurrent(), "realtime_db_turns", None)
            or transaction.get_connection().in_atomic_block):
        return write()
    if _writers is None:
        _writers = DatabaseTurns(conf.get("WEBSOCKET_DB_WRITE_CONCURRENCY"))
    return _writers.run(write)


def read_user(request):
    """`request.user`, its session and user rows read in a database reader's turn; at once when the
    request carries no session cookie (then it is anonymous, and nothing is read)."""
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        run_read(lambda: request.user.is_authenticated)
    return request.user
