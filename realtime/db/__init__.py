"""The database from the websocket worker: no socket holds a connection while it waits (`readers`),
and a crowd's reads are shared and taken in turns (`shared_reads`)."""

from .readers import read_user, release_db_connections, run_read
from .shared_reads import SharedReads

__all__ = ["SharedReads", "read_user", "release_db_connections", "run_read"]
