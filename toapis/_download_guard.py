"""Where a result download may connect: over https to a public address, or to the API's own origin.

Result URLs come from the API's answers, so they are not the client's to trust: a URL (or a redirect) naming a
loopback, private, link-local, multicast or unspecified address would make the bot fetch from its own network.
The host is resolved here and every address it resolves to is checked before anything connects; the request
then goes to a checked address (the name kept for TLS and the Host header), so a second lookup answering
differently (DNS rebinding) cannot send it elsewhere.

The one exception is the trusted origin: exactly the scheme, host and port of the API's base URL, which the
operator chose (in tests, the loopback fake on http).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp.abc import AbstractResolver
from yarl import URL

from toapis.errors import APIConnectionError, DownloadError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Redirects followed per download, each checked like the first URL.
MAX_REDIRECTS: Final = 3


@dataclass(frozen=True)
class Origin:
    """A URL's scheme, host (lower case) and port (the scheme's default when the URL names none)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: URL) -> Origin:
        if url.scheme not in ("http", "https") or not url.host or url.port is None:
            raise ValueError(f"not an http(s) URL with a host: {str(url)[:100]!r}")
        return cls(url.scheme, url.host.lower().rstrip("."), url.port)

    def __str__(self) -> str:
        return str(URL.build(scheme=self.scheme, host=self.host, port=self.port))


@dataclass(frozen=True)
class Hop:
    """One way to request a URL: where to connect, the Host header and the name TLS must verify."""

    url: URL
    headers: Mapping[str, str] = field(default_factory=dict)
    server_hostname: str | None = None


def is_public_address(address: IPAddress) -> bool:
    """Whether a download may connect to `address`: not loopback, private, link-local, multicast, unspecified,
    reserved or otherwise non-global (an IPv6 address that maps an IPv4 one is judged by that one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


async def plan_download(url: str, *, trusted: Origin, resolver: AbstractResolver) -> list[Hop]:
    """The ways to request `url`, one per address its host resolves to, each checked; raises DownloadError when
    the URL may not be fetched, APIConnectionError when its host cannot be resolved (worth retrying)."""
    parsed = URL(url, encoded=True)
    try:
        origin = Origin.of(parsed)
    except ValueError:
        raise DownloadError(f"not an http(s) URL: {url[:100]!r}", operation="download") from None
    if origin == trusted:
        return [Hop(parsed)]
    if origin.scheme != "https":
        raise DownloadError(f"refused {url[:100]!r}: results are downloaded over https only", operation="download")
    literal = _ip_literal(origin.host)
    if literal is not None:
        if not is_public_address(literal):
            raise DownloadError(f"refused {url[:100]!r}: {literal} is not a public address", operation="download")
        return [Hop(parsed)]
    addresses = await _resolve(origin, resolver)
    refused = [address for address in addresses if not is_public_address(address)]
    if refused:
        raise DownloadError(
            f"refused {url[:100]!r}: {origin.host} resolves to {refused[0]}, which is not a public address",
            operation="download",
        )
    return [pinned(parsed, address) for address in addresses]


def pinned(url: URL, address: IPAddress) -> Hop:
    """A request for `url` that connects to `address`, saying and verifying the URL's own host name."""
    assert url.host is not None
    return Hop(
        url.with_host(str(address)),
        headers={"Host": url.host_port_subcomponent or url.host},
        server_hostname=url.host,
    )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is not part of it
    except ValueError:
        return None


async def _resolve(origin: Origin, resolver: AbstractResolver) -> list[IPAddress]:
    try:
        answers = await resolver.resolve(origin.host, origin.port, family=socket.AF_UNSPEC)
    except OSError as exc:
        raise APIConnectionError(
            f"could not resolve {origin.host} ({exc})", maybe_sent=False, operation="download"
        ) from None
    addresses: list[IPAddress] = []
    for answer in answers:
        address = _ip_literal(answer["host"])
        if address is None:  # a resolver answers with addresses; anything else cannot be checked, so refuse
            raise DownloadError(f"refused {origin.host}: it resolved to {answer['host']!r}", operation="download")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise APIConnectionError(f"could not resolve {origin.host}", maybe_sent=False, operation="download")
    return addresses
