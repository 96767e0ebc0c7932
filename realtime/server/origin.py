"""Cross-site WebSocket hijacking protection: which page origins may open a socket.

Browsers send `Origin` with every WebSocket handshake and attach the user's cookies, whatever
site the page came from. The check is Django's CSRF origin check (CsrfViewMiddleware): the whole
origin (scheme, host and port) must be the request's own origin (the scheme from the request, so
`SECURE_PROXY_SSL_HEADER` counts; host and port from `Host`, which must pass `ALLOWED_HOSTS`), or
be listed in `CSRF_TRUSTED_ORIGINS` (`https://*.example.com` for subdomains). `ALLOWED_HOSTS = ['*']`
only stops Django from checking Host; it never admits another site's page.

Development (DEBUG) serves pages and sockets on two ports of one host (`make run`: :8000 and
:8001), two origins: with DEBUG on, a page on the same host and scheme is accepted on any port.
(Cookies do not tell ports apart either, so that admits nobody who could not borrow them anyway.)

No Origin at all is a non-browser client (websocket-client, websockets): accepted, since it
cannot borrow a browser's cookies.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.utils.http import is_same_domain

from ..reverse import host_without_port


def origin_allowed(request, origin):
    """True if a page of `origin` may open a WebSocket with this request (an upgrade request)."""
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    if not parsed.scheme or not parsed.netloc:
        return False  # "null" (file://, sandboxed frames) or garbage
    try:
        own_host = request.get_host()  # host[:port], checked against ALLOWED_HOSTS
    except DisallowedHost:
        own_host = None
    if own_host is not None:
        own_scheme = "https" if request.is_secure() else "http"
        if origin == f"{own_scheme}://{own_host}":
            return True
        if settings.DEBUG and parsed.scheme == own_scheme and \
                host_without_port(parsed.netloc) == host_without_port(own_host):
            return True  # development: the page's port is not the socket's
    trusted = getattr(settings, "CSRF_TRUSTED_ORIGINS", [])
    if origin in trusted:
        return True
    return any(is_same_domain(parsed.netloc, urlsplit(pattern).netloc.lstrip("*"))
               for pattern in trusted if "*" in pattern and urlsplit(pattern).scheme == parsed.scheme)
