"""The old import path of the broker: see realtime/brokers/."""

from .brokers import BrokerUnavailable, get_broker, publish  # noqa: F401
