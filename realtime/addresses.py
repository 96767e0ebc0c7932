"""Who a request comes from, by address: what budgets per address count (realtime/budgets.py).

Behind nginx every socket's TCP peer is nginx itself. deploy/nginx.conf appends the address it saw
to X-Forwarded-For, so with WEBSOCKET_BEHIND_PROXY the last entry is the client's; the entries
before it are whatever the client sent, and are never believed.
"""

import ipaddress

from . import conf


def client_address(request):
    """The client's address: REMOTE_ADDR, or behind the proxy the last X-Forwarded-For entry
    (REMOTE_ADDR when there is none: a request that did not come through the proxy)."""
    meta = request.META
    if conf.get("WEBSOCKET_BEHIND_PROXY"):
        last_hop = meta.get("HTTP_X_FORWARDED_FOR", "").rpartition(",")[2].strip()
        if last_hop:
            return last_hop
    return meta.get("REMOTE_ADDR") or "unknown"


def client_network(request):
    """The client address as one client: an IPv4 address, or an IPv6 address's /64 (a host or a
    home network is usually given a whole /64 to pick addresses from, one per connection if it likes)."""
    address = client_address(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test's, a unix socket's): count it as it is
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:  # ::ffff:a.b.c.d, an IPv4 client of a dual-stack socket
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
