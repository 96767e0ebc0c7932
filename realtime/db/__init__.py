"""The database from the websocket worker: no socket holds a connection while it waits, reads and
writes take turns for a few connections (`readers`), and a crowd's reads are shared (`shared_reads`)."""

from .readers import read_user, release_db_connections, run_read, run_write
from .shared_reads import SharedReads

__all__ = ["SharedReads", "read_user", "release_db_connections", "run_read", "run_write"]
