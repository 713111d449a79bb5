"""The client's address: the one function the login throttle, its lockout rows and logs use.

It is the connection's address (REMOTE_ADDR) unless that connection comes from a trusted reverse
proxy (settings TRUSTED_PROXIES: addresses or networks; or TRUSTED_PROXY_HOPS: how many proxies
every request passes). Only then is X-Forwarded-For read, from the right: each trusted proxy
appended the address it saw, so the first entry from the right that is not a trusted proxy is
the client; entries further left are whatever the client wrote and are never used. A direct
client's X-Forwarded-For is ignored, so rotating it cannot rotate the throttle's key.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5 (a dual-stack socket's view)
    return addr


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(addr: Address, networks: tuple[Network, ...]) -> bool:
    return any(addr in net for net in networks)


def forwarded_chain(request: HttpRequest) -> list[str]:
    """X-Forwarded-For's entries, left to right (the header may be sent several times)."""
    raw = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def client_address(request: HttpRequest) -> str:
    """AXES_CLIENT_IP_CALLABLE and every log line's client: see the module docstring."""
    remote_text = str(request.META.get("REMOTE_ADDR") or "")
    remote = _address(remote_text)
    if remote is None:
        return remote_text  # not an IP (a unix socket's peer): nothing to walk
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    hops = int(settings.TRUSTED_PROXY_HOPS)
    if not networks and not hops:
        return str(remote)
    if networks and not _trusted(remote, networks):
        return str(remote)  # a direct client: its X-Forwarded-For is its own writing
    client = remote
    for depth, entry in enumerate(reversed(forwarded_chain(request)), start=1):
        if hops and depth > hops:
            break
        if networks and not _trusted(client, networks):
            break
        addr = _address(entry)
        if addr is None:
            break  # a trusted proxy wrote no address here: keep the last one it vouched for
        client = addr
    return str(client)


__all__ = ["client_address", "forwarded_chain"]
