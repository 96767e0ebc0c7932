"""Every setting this layer and the applications read: its default, how docs show it, what it means.

The one registry: each `Setting` is registered once, by the module it belongs to (this one for the
layer; an application's own `conf.py` for its settings, e.g. chat/conf.py). Then `get(name)` reads
any of them (the project's value, else the default), `from_environ()` reads them all from
environment variables, and `python -m realtime.conf [MODULE ...]` prints a module's settings as the
table of docs/settings.md. `python -m realtime.conf --write FILE ...` writes the defaults into docs:
each generated table, and each default in parentheses after a setting's name (tests/test_conf.py
checks that the docs are what it writes).
"""

import importlib
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


class Setting(NamedTuple):
    name: str
    default: object
    shown: str  # the default as docs write it, as the table's cell and in "`NAME` (shown)"
    meaning: str


REGISTRY = {}  # name -> Setting, of every module that registered its settings
DEFAULTS = {}  # name -> default


def register(*entries):
    """Add a module's settings to the registry; returns them (the module's SETTINGS)."""
    for setting in entries:
        if setting.name in REGISTRY and REGISTRY[setting.name] != setting:
            raise ImproperlyConfigured(f"setting {setting.name} is registered twice, with two defaults or meanings")
        REGISTRY[setting.name] = setting
        DEFAULTS[setting.name] = setting.default
    return entries


SETTINGS = register(
    Setting("WEBSOCKET_URLCONF", "websocket_urls", "`websocket_urls`",
            "the module of routes the websocket worker serves, as `ROOT_URLCONF` is for pages."),
    Setting("WEBSOCKET_SERVER", "", "empty",
            "where `{% websocket_url %}` points: empty = same origin (behind nginx), `:8001` = the page's host "
            "on port 8001, or a full `ws(s)://host` URL. Sockets on another port or host are another origin: "
            "outside `DEBUG` list the pages' origin in `CSRF_TRUSTED_ORIGINS`."),
    Setting("REDIS_URL", "", "empty",
            "the broker (`realtime/fanout/brokers/`): empty means in-process (one worker process only); "
            "`redis://[:password@]host:6379/0` or `rediss://...` (TLS) one Redis server; the Sentinel and "
            "Cluster forms are below the table."),
    Setting("REALTIME_KEY_PREFIX", "", "empty",
            "put before every Redis channel and key this project uses (`prod:` gives `prod:chat:lobby`, "
            "`prod:presence:chat:lobby`, ...): two sites that share one Redis server must set different ones, or "
            "each hears the other's messages and sees its members (PubSub ignores the database number). Empty by "
            "default because a prefix splits the workers that do not share it: the workers of a deployment that "
            "sets one during a rolling update would not hear the old ones until all run with it, and deriving one "
            "from the project would give staging and production of the same project the same prefix anyway, "
            "which is the case that needs two. `tests/test_key_prefix.py` runs two sites on one Redis."),
    Setting("WEBSOCKET_WORKER_APP", "realtime.wsgi:application", "`realtime.wsgi:application`",
            "the WSGI application of the websocket worker, as gunicorn names it: the worker `realtime.testing` "
            "starts for live tests (docs/testing.md)."),
    Setting("WEBSOCKET_WORKER_CONFIG", "", "empty",
            "the gunicorn config file of that worker; empty: the worker class `realtime.worker.WebSocketWorker` "
            "with 10,000 connections a process."),
    Setting("WEBSOCKET_MIDDLEWARE", None, "`None` (= `MIDDLEWARE`)",
            "the middleware a WebSocket request passes through. A socket's only HTTP answer is its 101 (or a "
            "refusal), so middleware that shapes pages' responses (messages, X-Frame-Options, security headers, "
            "CSRF cookies) is work on every join for nothing; this project keeps sessions and authentication. "
            "The Origin check does not depend on it (`realtime/server/origin.py`). Not read from the environment."),
    Setting("WEBSOCKET_MAX_MESSAGE_SIZE", 1024 * 1024, "1 MiB",
            "largest message a client may send; a frame header that declares more closes with 1009."),
    Setting("WEBSOCKET_MAX_QUEUE_BYTES", 4 * 1024 * 1024, "4 MiB",
            "a connection's outbound queue, in bytes; a client that lets it overflow is closed with 1013."),
    Setting("WEBSOCKET_MAX_QUEUE_MESSAGES", 1000, "1000", "the same queue, in messages."),
    Setting("WEBSOCKET_SEND_BUFFER", 0, "0",
            "the kernel's send buffer per socket (SO_SNDBUF) in bytes; 0 keeps the system's autotuning (up to "
            "`tcp_wmem`, often 4 MiB per slow socket). Lower it to bound memory with many slow clients."),
    Setting("WEBSOCKET_CLOSE_TIMEOUT", 5.0, "5 s",
            "how long to wait for the peer's close frame before cutting the TCP connection."),
    Setting("WEBSOCKET_HANDSHAKE_TIMEOUT", 10.0, "10 s",
            "how long a client has to send a complete upgrade request after connecting."),
    Setting("WEBSOCKET_MAX_CONNECTIONS", 9000, "9000",
            "open connections per worker process; one more gets 503 at the handshake."),
    Setting("WEBSOCKET_DB_CONCURRENCY", 8, "8",
            "greenlets of a worker process that read the database for joins at once (the others wait their "
            "turn): bounds the database connections a join storm opens, per process."),
    Setting("WEBSOCKET_MAX_HANDSHAKES", 500, "500",
            "upgrades a worker process handles at once between the request and the 101 (the join: its "
            "database reads and presence); one more gets 503 + `Retry-After` instead of waiting in line."),
    Setting("WEBSOCKET_GC_FREEZE", 1, "1",
            "1: the worker freezes what survives a full garbage collection (`gc.freeze`), so that the next one "
            "does not walk every open connection again (~300 ms at 10,000), and reclaims frozen garbage once a "
            "quarter of the connections closed (`realtime/server/collector.py`); 0: CPython's collector as is (`/metrics` still "
            "counts full collections and their time)."),
    Setting("WEBSOCKET_RATE_LIMIT", 50, "50/s",
            "incoming messages per second per connection (0: no limit)."),
    Setting("WEBSOCKET_RATE_BURST", 100, "100", "the burst allowed above `WEBSOCKET_RATE_LIMIT`."),
    Setting("WEBSOCKET_FRAME_RATE", 200, "200/s",
            "incoming frames per second per connection, of every kind (pings, pongs, fragments; one more per "
            "64 KiB of payload); over it: close 1008. 0: no limit."),
    Setting("WEBSOCKET_FRAME_BURST", 400, "400", "the burst allowed above `WEBSOCKET_FRAME_RATE`."),
    Setting("WEBSOCKET_PING_INTERVAL", 20.0, "20 s", "ping a client silent for about this long."),
    Setting("WEBSOCKET_PING_TIMEOUT", 20.0, "20 s",
            "no answer to the ping within this long: close 1011 and cut the connection."),
    Setting("WEBSOCKET_IDLE_TIMEOUT", 3600.0, "3600 s",
            "close a connection that sent no message for this long (1001); 0 disables."),
    Setting("WEBSOCKET_MAX_TOPICS", 50, "50",
            "topics one socket of `/socket/` may have joined at once (docs/protocol.md, Channels); one more join "
            "is refused with `too_many_topics`."),
    # Join budgets (realtime/budgets.py), shared by every socket of one client on every worker. A page
    # joins a handful of topics (about five), and every tab rejoins them after a reconnect.
    Setting("WEBSOCKET_JOIN_RATE", 10.0, "10/s",
            "a logged-in user's join budget, in topic joins per second (each join on `/socket/`, and each "
            "connect of a one-topic route), shared by all the account's sockets on every worker: a join reads "
            "history and writes presence. 0: no limit."),
    Setting("WEBSOCKET_JOIN_BURST", 100, "100",
            "the burst allowed above `WEBSOCKET_JOIN_RATE`: ten tabs of a page with five topics rejoining at once "
            "after a reconnect take half of it."),
    Setting("WEBSOCKET_GUEST_JOIN_RATE", 50.0, "50/s",
            "a guest's join budget, per client address (an IPv6 /64), shared by every guest socket of that "
            "address on every worker (a NAT or an office shares it too). 0: no limit."),
    Setting("WEBSOCKET_GUEST_JOIN_BURST", 300, "300",
            "the burst allowed above `WEBSOCKET_GUEST_JOIN_RATE`. Behind `deploy/nginx.conf` an address has at "
            "most 100 sockets and opens 10 a second after a burst of 40: 100 pages of five topics reconnecting at "
            "once join 200 times at once, then 50 a second, which these two allow."),
    Setting("WEBSOCKET_TOKEN_MAX_AGE", 600.0, "600 s",
            "how long a token (`POST /realtime/token/`, `manage.py realtime_token`) lets a client open a socket "
            "as its user; the command may give another with `--max-age`."),
    Setting("PRESENCE_TTL", 30.0, "30 s",
            "a member of a worker that died without cleaning up is gone from `presence` lists within this long."),
    Setting("PRESENCE_REFRESH", 10.0, "10 s",
            "how often each worker process (one greenlet) refreshes its members; must be shorter than "
            "`PRESENCE_TTL`. Their leave is announced within `PRESENCE_TTL + PRESENCE_REFRESH + "
            "PRESENCE_DIFF_WINDOW`."),
    Setting("PRESENCE_DIFF_WINDOW", 1.0, "1 s",
            "each worker sends a room's joins, leaves and name changes of this long as one `presence_diff` "
            "(docs/protocol.md, Presence): a member gets about one diff per worker and window however many join."),
    Setting("PRESENCE_PAGE_SIZE", 100, "100",
            "a joiner gets the member count and at most this many members; a `members` request gets the next "
            "page of this size."),
    Setting("CLIENT_HEARTBEAT_INTERVAL", 20.0, "20 s",
            "how often the browser client (clients/js, given this by `{% realtime_client %}`) sends its `heartbeat` "
            "(the older envelope routes: `ping`)."),
    Setting("CLIENT_HEARTBEAT_TIMEOUT", 10.0, "10 s",
            "nothing received this long after a heartbeat (or no open this long after connecting): the client drops "
            "the connection and reconnects. A dead connection is noticed within interval + timeout."),
    Setting("CLIENT_HOLE_TIMEOUT", 3.0, "3 s",
            "an offset of a topic with history (a chat message id) the browser client still lacks this long after "
            "a later one arrived (a hole: see `docs/protocol.md`, Resuming a topic): it leaves and joins that "
            "topic again from the last offset before the hole."),
    Setting("CLIENT_RECONNECT_WINDOW", 5.0, "5 s",
            "after a lost connection, a 503 or a close that means \"come back\" (1001, 1012), the browser client "
            "reconnects after a random delay between 0 and this (full jitter; a close reason `... "
            "reconnect_window=<s>` overrides it), so that a crowd comes back spread out; later attempts back "
            "off to 15 s. Also the upper bound of the `Retry-After` of a 503 at the handshake."),
    Setting("REDIS_HEALTH_CHECK_INTERVAL", 5.0, "5 s",
            "how soon a worker notices a Redis that stops answering without closing its connections (stopped, "
            "hung, cut off by a partition: no TCP reset comes): a PubSub connection silent for half of this is "
            "sent a PING, and one still silent after all of it is taken for lost: `/healthz` is degraded and "
            "the worker reconnects and catches its clients up, as after any outage. No reply of Redis is waited "
            "for longer than this (a publish then fails: its sender is told delivery is degraded). Redis busy "
            "with one command for longer than half of it is taken for lost too."),
    Setting("WEBSOCKET_DB_WRITE_CONCURRENCY", 4, "4",
            "greenlets of a worker process that write to the database for sockets (chat posts) at once, each "
            "with its own connection kept between writes; the others wait their turn. A worker process opens at "
            "most this plus `WEBSOCKET_DB_CONCURRENCY` database connections for its sockets."),
    Setting("WEBSOCKET_BEHIND_PROXY", 0, "0",
            "1: a proxy in front of the workers (nginx, `deploy/nginx.conf`) appends each client's address to "
            "`X-Forwarded-For`, and a socket's client address (what budgets per address count) is its last "
            "entry. 0: the address is the TCP peer's (`REMOTE_ADDR`): behind a proxy that is the proxy, so every "
            "client would share one budget. Set 1 only when the workers cannot be reached but through the "
            "proxy: the entries before the last are whatever the client claimed."),
)


_values = {}


def get(name):
    # Read on every join: a setting left at its default would cost an AttributeError each time.
    try:
        return _values[name]
    except KeyError:
        value = _values[name] = getattr(settings, name, DEFAULTS[name])
        return value


def _forget(**kwargs):
    _values.clear()


setting_changed.connect(_forget)


def parse(name, text):
    """The value of setting `name` written as `text` (an environment variable), typed like its default."""
    default = DEFAULTS[name]
    if isinstance(default, str):
        return text
    try:
        return float(text) if isinstance(default, float) or "." in text else int(text)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={text!r}: expected a number like {default!r}") from None


def from_environ(environ=os.environ):
    """{name: value} for every registered setting given in `environ` (empty counts as unset), for a
    settings module to take once it imported the applications' conf modules:
    `globals().update(realtime.conf.from_environ())`. Settings without a default (None) are not read."""
    return {name: parse(name, environ[name]) for name in DEFAULTS
            if environ.get(name) and DEFAULTS[name] is not None}


def markdown_table(entries=SETTINGS):
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.shown} | {s.meaning} |" for s in entries]
    return "\n".join(rows) + "\n"


def settings_of(*modules):
    """The settings the named modules register (importing them registers them)."""
    return [setting for module in modules for setting in importlib.import_module(module).SETTINGS]


# A table the command writes, between these lines: "<!-- generated: python -m realtime.conf chat.conf -->".
GENERATED = re.compile(r"(<!-- generated: python -m realtime\.conf((?: [\w.]+)*) -->\n)(.*?)(<!-- end generated -->)", re.S)
# A default shown after a setting's name: "`WEBSOCKET_RATE_LIMIT` (50/s)".
SHOWN_DEFAULT = re.compile(r"`([A-Z][A-Z0-9_]*)` \(([^()\n]*)\)")


def table_modules(generated):
    return generated[2].split() or ["realtime.conf"]


def document(text):
    """Markdown `text` with the defaults the registry holds: each generated table written anew, and
    the parentheses after a registered setting's name holding its default as `shown`."""
    def table(match):
        return match[1] + markdown_table(settings_of(*table_modules(match))) + match[4]

    def default(match):
        setting = REGISTRY.get(match[1])
        return match[0] if setting is None else f"`{setting.name}` ({setting.shown})"

    return SHOWN_DEFAULT.sub(default, GENERATED.sub(table, text))


def main(args):
    if args[:1] != ["--write"]:
        print(markdown_table(settings_of(*(args or ["realtime.conf"]))), end="")
        return
    texts = {path: Path(path).read_text() for path in args[1:]}
    for text in texts.values():  # register the tables' modules first: their defaults show in prose too
        for match in GENERATED.finditer(text):
            settings_of(*table_modules(match))
    for path, text in texts.items():
        if document(text) != text:
            Path(path).write_text(document(text))
            print(f"wrote {path}")


if __name__ == "__main__":
    # Through the imported module: applications register with realtime.conf, not with __main__.
    importlib.import_module("realtime.conf").main(sys.argv[1:])
