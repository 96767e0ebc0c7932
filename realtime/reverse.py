"""Reverse a route of WEBSOCKET_URLCONF to the absolute ws:// or wss:// URL a browser opens."""

from urllib.parse import urlsplit

from django.urls import reverse

from . import conf


def websocket_url(name, args=None, kwargs=None, request=None):
    """The URL a browser should open for route `name`, given the page's request.

    WEBSOCKET_SERVER decides the origin:
    - ""            same origin as the page (behind nginx);
    - ":8001"       the host the page was opened with, on another port (development);
    - "wss://host"  that origin, for a separate WebSocket host (http(s):// is accepted too).
    Without a request, same-origin mode gives a path, which browsers resolve against the page.
    """
    path = reverse(name, urlconf=conf.get("WEBSOCKET_URLCONF"), args=args, kwargs=kwargs)
    server = conf.get("WEBSOCKET_SERVER").strip()
    if "://" in server:
        parts = urlsplit(server)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"
    if request is None:
        if server:
            raise ValueError("WEBSOCKET_SERVER as a port needs the request (add the 'request' context processor)")
        return path
    scheme = "wss" if request.is_secure() else "ws"
    host = request.get_host()
    if server.startswith(":"):
        host = host_without_port(host) + server
    return f"{scheme}://{host}{path}"


def host_without_port(host):
    if host.startswith("["):  # IPv6 literal: [::1]:8000
        return host[: host.index("]") + 1]
    return host.rsplit(":", 1)[0]
