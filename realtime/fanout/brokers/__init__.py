"""Moving messages between processes. `REDIS_URL` chooses the broker (docs/settings.md):

- empty: in-process (in_process.py), enough for one worker process, and says so at start-up;
- `redis://host:port/db`, `rediss://...`: one Redis server (redis_server.py);
- `redis+sentinel://host1:26379,host2:26379/<service>/<db>`: the primary found through Sentinel,
  found again after a failover (redis_sentinel.py);
- `redis+cluster://host1:7000,host2:7001/`: Redis Cluster, fan-out on sharded PubSub (redis_cluster.py).

The interface every broker offers is in base.py. REALTIME_KEY_PREFIX is on every channel and key.
This process's broker is `get_broker()` (realtime/runtime.py: made and reset with the hub and presence).
"""

from django.core.exceptions import ImproperlyConfigured

from ...runtime import get_broker
from .base import Broker, BrokerUnavailable, Names
from .urls import mask_password

__all__ = ["Broker", "BrokerUnavailable", "broker_for", "get_broker", "publish"]


def broker_for(url, prefix=""):
    """The broker that `url` (a REDIS_URL) names, its channels and keys prefixed with `prefix`."""
    scheme = url.partition("://")[0] if url else ""
    if not url:
        from .in_process import InProcessBroker

        return InProcessBroker(Names(prefix))
    if scheme in ("redis", "rediss", "unix"):
        from .redis_server import RedisBroker

        return RedisBroker(url, Names(prefix))
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        from .redis_sentinel import SentinelBroker

        return SentinelBroker(url, Names(prefix))
    if scheme in ("redis+cluster", "rediss+cluster"):
        from .redis_cluster import ClusterBroker

        return ClusterBroker(url, Names(prefix, hash_tag=True))
    raise ImproperlyConfigured(f"REDIS_URL {mask_password(url)!r}: unknown scheme {scheme!r} (redis://, rediss://, "
                               "redis+sentinel://, redis+cluster://; see docs/settings.md)")


def publish(channel, message):
    """Send a text message to every socket subscribed to `channel`, in every worker.

    Callable from any Django code. Raises BrokerUnavailable when Redis is down.
    """
    get_broker().publish(channel, message)
