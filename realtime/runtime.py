"""This process's broker, hub and presence tracker, made at their first use from the settings.

They belong together: the hub subscribes at the broker, and presence keeps its member lists where
the broker reaches (realtime/presence/stores.py picks the store from the broker's client, names and
capabilities). So they are made, and forgotten, together: when REDIS_URL or REALTIME_KEY_PREFIX
change (tests override them) `reset()` stops and drops all three, and the next use makes new ones.
A hub or a tracker never keeps a broker the settings no longer name.

Applications reach them by their long-standing names: `realtime.brokers.publish` and
`realtime.fanout.brokers.get_broker`, `realtime.fanout.hub.get_hub`, `realtime.presence.get_presence`.
"""

import threading

from django.core.signals import setting_changed

from . import conf

# The settings that name the broker and what it reaches.
BROKER_SETTINGS = ("REDIS_URL", "REALTIME_KEY_PREFIX", "REDIS_HEALTH_CHECK_INTERVAL")

_lock = threading.RLock()  # the page server publishes from several threads
_parts = {}  # maker -> what it made: this process's broker, hub and tracker


def _make_broker():
    from .fanout.brokers import broker_for

    return broker_for(conf.get("REDIS_URL"), conf.get("REALTIME_KEY_PREFIX"))


def _make_hub():
    from .fanout.hub import Hub

    return Hub(get_broker())


def _make_presence():
    from .presence.tracker import tracker_for

    return tracker_for(get_broker())


def _part(make):
    with _lock:
        if make not in _parts:
            _parts[make] = make()
        return _parts[make]


def get_broker():
    """This process's broker, chosen by REDIS_URL (not started: the worker starts it)."""
    return _part(_make_broker)


def get_hub():
    """This process's hub, on its broker (the worker starts the broker with the hub's callbacks)."""
    return _part(_make_hub)


def get_presence():
    """This process's presence tracker, its store where the broker reaches."""
    return _part(_make_presence)


def flush_presence_before_exit():
    """This process's members leave with it: announce it now (if it ever had presence)."""
    presence = _parts.get(_make_presence)
    if presence is not None:
        presence.leave_everyone()


def reset():
    """Forget the broker, the hub and presence together, stopping their loops."""
    with _lock:
        parts = dict(_parts)
        _parts.clear()
    for make in (_make_presence, _make_broker):
        if make in parts:
            parts[make].stop()


def _settings_changed(setting, **kwargs):
    if setting in BROKER_SETTINGS:
        reset()


setting_changed.connect(_settings_changed)
