"""`publish` from any Django code, by its long-standing path: `realtime.brokers.publish(channel, text)`.

The brokers live in `realtime/fanout/brokers/`.
"""

from .fanout.brokers import BrokerUnavailable, get_broker, publish

__all__ = ["BrokerUnavailable", "get_broker", "publish"]
