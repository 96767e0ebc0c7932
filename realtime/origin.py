"""Cross-site WebSocket hijacking protection: which page origins may open a socket.

Browsers send `Origin` with every WebSocket handshake and attach the user's cookies, whatever
site the page came from. A handshake whose Origin names a host in ALLOWED_HOSTS, or an origin in
CSRF_TRUSTED_ORIGINS (`https://*.example.com` wildcards too), is accepted; any other gets 403.
No Origin at all is a non-browser client (websocket-client, websockets): accepted, since it
cannot borrow a browser's cookies.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host


def origin_allowed(origin):
    parts = urlsplit(origin)
    if not parts.scheme or not parts.hostname:
        return False  # "null" (file://, sandboxed frames) or garbage
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django itself allows then
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if validate_host(host, allowed_hosts):
        return True
    return any(_origin_matches(origin, trusted) for trusted in getattr(settings, "CSRF_TRUSTED_ORIGINS", []))


def _origin_matches(origin, trusted):
    origin, trusted = origin.lower().rstrip("/"), trusted.lower().rstrip("/")
    if "://*." in trusted:
        scheme, suffix = trusted.split("://*.", 1)
        return origin.startswith(f"{scheme}://") and (origin.endswith("." + suffix) or origin == f"{scheme}://{suffix}")
    return origin == trusted
