"""Render the nginx site from deploy/nginx.conf, the one template that production and tests use.

    python -m deploy.nginx_conf --listen 80 --pages 127.0.0.1:8000 \\
        --websockets 127.0.0.1:8001 127.0.0.1:8002 --static-root /srv/realtime/static

prints the site (docs/deployment.md puts it in /etc/nginx/sites-available/realtime). With TLS add
--tls-listen 443 --certificate PATH --certificate-key PATH. Per client address, WebSocket upgrades
are limited to --ws-connections open sockets (503 past it) and --ws-rate new ones (10r/s, or
per minute: 30r/m) with --ws-burst more at once (429 past them). Placeholders are filled outside
comments only; a value the template asks for and nobody gave is an error, not an empty string.
"""

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf")
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
TLS_MARK = "#tls# "
# A value ends up inside an nginx directive: these would end or open one.
UNSAFE = re.compile(r'[;{}"\s]')


def checked(name, value):
    value = str(value)
    if not value or UNSAFE.search(value):
        raise ValueError(f"{name}: {value!r} is empty or holds a space, quote, ';', '{{' or '}}'")
    return value


# Per client address: open sockets, new sockets per second or minute, and the burst above that rate.
DEFAULT_LIMITS = {"ws_connections": 100, "ws_rate": "10r/s", "ws_burst": 40}
RATE = re.compile(r"[1-9][0-9]*r/[sm]")


def positive(name, value):
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise ValueError(f"{name}: {value!r} is not a whole number of at least 1")
    return str(int(value))


def rate(name, value):
    if not RATE.fullmatch(str(value)):
        raise ValueError(f"{name}: {value!r} is not a rate such as 10r/s or 30r/m")
    return str(value)


def server_lines(name, addresses):
    if not addresses:
        raise ValueError(f"{name}: at least one host:port is needed")
    return "\n    ".join(f"server {checked(name, address)};" for address in addresses)


def render(listen, pages, websockets, static_root, tls_listen=None, certificate=None, certificate_key=None,
           ws_connections=DEFAULT_LIMITS["ws_connections"], ws_rate=DEFAULT_LIMITS["ws_rate"],
           ws_burst=DEFAULT_LIMITS["ws_burst"], template=TEMPLATE):
    """The nginx site as text. `pages` and `websockets` are lists of host:port."""
    tls = [tls_listen, certificate, certificate_key]
    if any(tls) and not all(tls):
        raise ValueError("TLS needs all three of tls_listen, certificate and certificate_key")
    values = {
        "LISTEN": checked("listen", listen),
        "PAGE_SERVERS": server_lines("pages", pages),
        "WEBSOCKET_SERVERS": server_lines("websockets", websockets),
        "STATIC_ROOT": checked("static_root", str(static_root).rstrip("/")),
        "WS_CONNECTIONS": positive("ws_connections", ws_connections),
        "WS_RATE": rate("ws_rate", ws_rate),
        "WS_BURST": positive("ws_burst", ws_burst),
    }
    if all(tls):
        values.update(TLS_LISTEN=checked("tls_listen", tls_listen), CERTIFICATE=checked("certificate", certificate),
                      CERTIFICATE_KEY=checked("certificate_key", certificate_key))

    def fill(match):
        if match.group(1) not in values:
            raise ValueError(f"{template} asks for {match.group(0)}, which has no value")
        return values[match.group(1)]

    lines = ["# Rendered from deploy/nginx.conf by `python -m deploy.nginx_conf`: change it there and render again."]
    for line in Path(template).read_text().splitlines():
        if line.lstrip().startswith(TLS_MARK):
            if not all(tls):
                continue
            line = line.replace(TLS_MARK, "", 1)
        if not line.lstrip().startswith("#"):
            line = PLACEHOLDER.sub(fill, line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="80", help="port or address:port for http (default 80)")
    parser.add_argument("--pages", nargs="+", default=["127.0.0.1:8000"], metavar="HOST:PORT",
                        help="page servers (default 127.0.0.1:8000)")
    parser.add_argument("--websockets", nargs="+", default=["127.0.0.1:8001"], metavar="HOST:PORT",
                        help="websocket workers (default 127.0.0.1:8001)")
    parser.add_argument("--static-root", required=True, help="the STATIC_ROOT that collectstatic filled")
    parser.add_argument("--tls-listen", help="port or address:port for https, e.g. 443")
    parser.add_argument("--certificate", help="certificate chain (PEM), e.g. .../fullchain.pem")
    parser.add_argument("--certificate-key", help="its private key (PEM), e.g. .../privkey.pem")
    parser.add_argument("--ws-connections", default=DEFAULT_LIMITS["ws_connections"], metavar="N",
                        help="open WebSockets per client address; one more gets 503 (default %(default)s)")
    parser.add_argument("--ws-rate", default=DEFAULT_LIMITS["ws_rate"], metavar="RATE",
                        help="new WebSockets per client address, e.g. 10r/s or 30r/m (default %(default)s)")
    parser.add_argument("--ws-burst", default=DEFAULT_LIMITS["ws_burst"], metavar="N",
                        help="upgrades let through at once above --ws-rate; more get 429 (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        site = render(args.listen, args.pages, args.websockets, args.static_root,
                      args.tls_listen, args.certificate, args.certificate_key,
                      args.ws_connections, args.ws_rate, args.ws_burst)
    except ValueError as error:
        parser.error(str(error))
    sys.stdout.write(site)


if __name__ == "__main__":
    main()
