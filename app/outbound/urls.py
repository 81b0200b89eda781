"""Outbound URL safety: Rebound never calls a private, loopback or link-local address unless
``REBOUND_ALLOW_PRIVATE_URLS`` says so (on in development and tests, off in production)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import ValidationFailed


def _blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified)


def check_outbound_url(url: str, *, allow_private: bool, field: str = "url") -> str:
    """Return ``url`` if Rebound may call it.

    Every address the host resolves to must be public (a name resolving to one public and one
    private address is refused: the resolver may pick either later).

    :raise ValidationFailed: (422 on ``field``) not http(s), no host, unresolvable, or private.
    """

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed("This URL cannot be called from Rebound.", {"fields": {field: [message]}})

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse("Use an http(s) URL with a host name.")
    if parts.username or parts.password:
        raise refuse("Put credentials in the integration's secrets, not in the URL.")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise refuse(f"The host {parts.hostname!r} cannot be resolved.") from None
    addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    if not addresses or any(_blocked(address) for address in addresses):
        raise refuse(f"The host {parts.hostname!r} resolves to a private, loopback or link-local address.")
    return url
