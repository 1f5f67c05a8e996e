"""Where a webhook may send: http(s) URLs whose host resolves only to public addresses.

Checked when a webhook is saved and again at every send, where the connection is pinned
to the address just checked (the URL's host is resolved once: a DNS answer that changes
between the check and the connection cannot point the request inside). Staff allow inner
networks with WEBHOOK_ALLOWED_NETWORKS (a list of CIDRs).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}
# The kinds of address a request from the portal must never reach unless staff allow it.
KINDS = (
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_unspecified", "unspecified"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


class Refused(Exception):
    """Not a URL the portal sends to; the message says why."""


class Unresolvable(Exception):
    """The host has no address now (DNS may answer later)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # without brackets
    port: int
    netloc: str  # what the Host header says
    path: str  # path and query


def parse(url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"Not a valid URL: {error}.") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise Refused("Use an http:// or https:// URL.")
    if not parts.hostname:
        raise Refused("The URL needs a host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("Credentials in the URL are not supported: use the signature.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        parts.scheme,
        parts.hostname,
        port or DEFAULT_PORTS[parts.scheme],
        parts.netloc,
        path,
    )


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(c, strict=False) for c in settings.WEBHOOK_ALLOWED_NETWORKS]
    except ValueError as error:
        raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {error}") from None


def unsafe_kind(address: IPAddress) -> str | None:
    """Why the portal must not connect to `address` ("loopback", ...), None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in allowed_networks()):
        return None
    for attribute, kind in KINDS:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "non-public"


def resolve(target: Target) -> list[IPAddress]:
    """Every address of the target's host; Refused when any of them is not public."""
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolvable(f"{target.host} does not resolve: {error}.") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    for address in addresses:
        kind = unsafe_kind(address)
        if kind is not None:
            raise Refused(f"{target.host} resolves to {address}, a {kind} address.")
    return addresses


def pinned_url(target: Target, address: IPAddress) -> str:
    """The target's URL with its host replaced by `address` (the Host header keeps the name)."""
    literal = f"[{address}]" if address.version == 6 else str(address)
    return f"{target.scheme}://{literal}:{target.port}{target.path}"
