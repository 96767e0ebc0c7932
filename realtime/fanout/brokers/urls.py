"""The REDIS_URL forms with more than one host (docs/settings.md): Sentinel and Cluster; and the
one way a REDIS_URL is shown in logs and error texts (`mask_password`)."""

import re
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from redis.cluster import ClusterNode

MASK = "***"


def mask_password(url):
    """`url` with its password (in the user part, or a `password=` parameter) replaced by ***: the
    only form of a REDIS_URL that logs, /healthz and error texts may show."""
    scheme, colon_slashes, rest = url.partition("://")
    if not colon_slashes:
        return url
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")  # the last @: a password may hold one unquoted
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hosts}"
    query = re.sub(r"(^|&)(password=)[^&#]*", rf"\g<1>\g<2>{MASK}", query)
    return f"{scheme}://{netloc}{slash}{path}{question}{query}"


def hosts_and_options(parts, default_port):
    """[(host, port)] from `host1:port1,host2` (IPv6 in brackets), and the connection options the
    URL gives (user and password, TLS for a `rediss...` scheme)."""
    userinfo, _, hosts = parts.netloc.rpartition("@")
    addresses = []
    for address in hosts.split(","):
        host, colon, port = address.rpartition(":") if not address.endswith("]") else ("", "", "")
        if not colon:
            host, port = address, ""
        addresses.append((host.strip("[]"), int(port or default_port)))
    options = {}
    if userinfo:
        username, _, password = userinfo.rpartition(":")
        options.update(username=unquote(username) or None, password=unquote(password) or None)
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
    return addresses, options


def parse_sentinel_url(url):
    """(sentinel addresses, service name, connection options for the primary, db among them)."""
    parts = urlsplit(url)
    path = [segment for segment in parts.path.split("/") if segment]
    if not parts.netloc or not 1 <= len(path) <= 2:
        raise ImproperlyConfigured(f"REDIS_URL {mask_password(url)!r}: expected "
                                   "redis+sentinel://host:port,host:port/<service>/<db>")
    sentinels, options = hosts_and_options(parts, 26379)
    return sentinels, path[0], {"db": int(path[1]) if len(path) > 1 else 0, **options}


def parse_cluster_url(url):
    """(startup nodes, connection options)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.path.strip("/"):
        raise ImproperlyConfigured(f"REDIS_URL {mask_password(url)!r}: expected redis+cluster://host:port,host:port/ "
                                   "(a cluster has no database number)")
    addresses, options = hosts_and_options(parts, 6379)
    return [ClusterNode(host, port) for host, port in addresses], options
