"""The demo application's settings, registered with the layer's (realtime/conf.py): read them with
`conf.get(name)`; their table in docs/settings.md is `python -m realtime.conf demos.conf`."""

from realtime.conf import Setting, get, register

__all__ = ["SETTINGS", "get"]

SETTINGS = register(
    Setting("CLOCK_INTERVAL", 1.0, "1 s",
            "how often the clock (`/time/`) pushes the time; one ticker per worker process."),
)
