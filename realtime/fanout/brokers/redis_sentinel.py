"""Redis with Sentinel (`redis+sentinel://host1:26379,host2:26379/<service>/<db>`): the one-server
broker, with clients from redis-py's `Sentinel.master_for`. Every new connection asks the sentinels
where the primary is, so after a failover the listener's reconnect (and the publishers' next
connection) reach the new primary; meanwhile publishes fail (BrokerUnavailable) and /healthz is
degraded, and once back the hub resyncs as after any reconnect.
"""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from .redis_server import RedisBroker
from .urls import mask_password, parse_sentinel_url


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The primary's connections, capped: a burst waits its turn instead of opening more (as with
    one server: see RedisBroker.make_clients)."""


class SentinelBroker(RedisBroker):
    kind = "redis-sentinel"

    def make_clients(self):
        sentinels, self.service_name, options = parse_sentinel_url(self.url)
        self.sentinel_addresses = sentinels
        # Asking a sentinel: quick timeouts and no retries (redis-py's default retries a refused
        # connection with backoff, 4 s a sentinel), so a dead sentinel costs little before the next is asked.
        self.sentinel = Sentinel(sentinels, socket_timeout=1, socket_connect_timeout=1, sentinel_kwargs={
            "socket_timeout": 1, "socket_connect_timeout": 1, "retry": Retry(NoBackoff(), 0)})
        publisher = self.sentinel.master_for(self.service_name, connection_pool_class=BlockingSentinelPool,
                                             max_connections=4, timeout=None, **self.publisher_options(), **options)
        listener = self.sentinel.master_for(self.service_name, **self.listener_options(), **options)
        return publisher, listener

    def health(self):
        """With the primary the listener is on (the sentinels' answer when it last connected)."""
        address = self.listen_client.connection_pool.master_address
        return {**super().health(), "broker_primary": f"{address[0]}:{address[1]}" if address else None}

    def explain(self, exc):
        if isinstance(exc, MasterNotFoundError):  # its text is the repr of a whole connection pool
            hosts = ", ".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
            return f"no sentinel ({hosts}) names a reachable primary for {self.service_name!r}"
        return str(exc)

    def describe_target(self):
        return f"the Redis primary of {self.service_name!r} (Sentinel)"

    def describe(self):
        return f"Redis PubSub on the primary of {self.service_name!r}, found through Sentinel at {mask_password(self.url)}"
