"""The server API's settings (docs/settings.md, docs/api.md): read them with `get(name)`.

Registered with the layer's (`realtime.conf.register`), so that `realtime.conf.from_environ()` reads
them too: the project's settings import this module before calling it.
"""

from .. import conf
from ..conf import Setting

SETTINGS = (
    Setting("REALTIME_API_RATE", 20.0, "20/s",
            "requests per second one API key may make, on every page server together (a broadcast costs one "
            "per topic); over it: 429 with `Retry-After`, and nothing is done. 0: no limit."),
    Setting("REALTIME_API_BURST", 100, "100", "the burst allowed above `REALTIME_API_RATE`."),
    Setting("REALTIME_API_MAX_BODY", 64 * 1024, "64 KiB",
            "the largest request body of an API call, in bytes; more: 413, and nothing is done."),
)
DEFAULTS = {setting.name: setting.default for setting in SETTINGS}

if hasattr(conf, "register"):
    conf.register(*SETTINGS)
else:  # a layer without the registry yet: the same effect on conf.get and conf.from_environ
    conf.DEFAULTS.update(DEFAULTS)

get = conf.get
