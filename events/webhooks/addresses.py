"""Which URLs a webhook may call, and the address a delivery connects to.

A webhook URL is the user's input, and the service calls it from inside its own network: a URL naming
`127.0.0.1`, `10.0.0.5` or the cloud's metadata service (`169.254.169.254`, `fd00:ec2::254`) would let any
user make the service request its private addresses (server-side request forgery). So a URL must be https,
and its host must resolve only to public addresses — checked when the endpoint is registered and again at
every delivery, since a name can later be pointed inside. The delivery then connects to the very address it
checked (no second lookup that could answer differently), sending the name in `Host` and as the TLS server
name, so that the certificate is still verified against the name.

`WEBHOOKS_ALLOW_INSECURE` (development only) lifts both rules.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

if TYPE_CHECKING:
    import httpx

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SYNTAX = URLValidator(schemes=["http", "https"])
# The properties that mark an address as not the public internet's, with the words that say so.
# The narrow kinds first: `is_private` also covers loopback, link-local and unspecified addresses.
_NOT_PUBLIC = (
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_unspecified", "an unspecified"),
    ("is_multicast", "a multicast"),
    ("is_private", "a private"),
    ("is_reserved", "a reserved"),
)


class RefusedUrl(Exception):
    """A URL a webhook may not call; the message says why, in words for the endpoint's owner."""


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: `url` names the checked address instead of the host."""

    url: httpx.URL
    address: str
    host_header: str
    sni_hostname: str | None


def insecure_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_INSECURE)


def registrable_url(url: str) -> str:
    """The URL, if an endpoint may be registered with it; raises RefusedUrl."""
    parsed = _parsed(url)
    if not insecure_allowed():
        _checked_addresses(parsed)
    return url


def delivery_target(url: str) -> Target:
    """Where a delivery to `url` connects: the host resolved once and every address checked; raises RefusedUrl."""
    parsed = _parsed(url)
    addresses = _checked_addresses(parsed) if not insecure_allowed() else resolve_host(_host(parsed), _port(parsed))
    address = addresses[0]
    return Target(
        url=parsed.copy_with(host=address),
        address=address,
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=_host(parsed) if parsed.scheme == "https" else None,
    )


def refusal(address: str) -> str | None:
    """Why a webhook may not connect to `address`, or None if it is a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is not part of the address
    for candidate in (ip, *_embedded_ipv4(ip)):
        for flag, words in _NOT_PUBLIC:
            if getattr(candidate, flag):
                return f"{address} is {words} address."
        if not candidate.is_global:
            return f"{address} is not a public address."
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself); raises RefusedUrl when none."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedUrl(f"The host {host} does not resolve.") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise RefusedUrl(f"The host {host} does not resolve.")
    return addresses


def _parsed(url: str) -> httpx.URL:
    # httpx's own parser, so that what is checked is what the delivery will call; imported here, not at the
    # top, because web workers load this module and httpx costs each of them megabytes that only a
    # registration needs (docs/PERFORMANCE.md, "Worker memory").
    import httpx

    try:
        _SYNTAX(url)
        parsed = httpx.URL(url)
    except (ValidationError, httpx.InvalidURL) as exc:
        raise RefusedUrl("Enter a valid URL.") from exc
    if parsed.scheme != "https" and not insecure_allowed():
        raise RefusedUrl("The URL must start with https://.")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise RefusedUrl("The port must be between 1 and 65535.")
    if parsed.userinfo:
        raise RefusedUrl("The URL may not carry a user name or password.")
    if parsed.fragment:
        raise RefusedUrl("The URL may not have a #fragment.")
    return parsed


def _checked_addresses(parsed: httpx.URL) -> list[str]:
    addresses = resolve_host(_host(parsed), _port(parsed))
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise RefusedUrl(f"The host {_host(parsed)} may not be called: {reason}")
    return addresses


def _host(parsed: httpx.URL) -> str:
    # The ASCII (IDNA) form: what DNS and the certificate know.
    return parsed.raw_host.decode("ascii")


def _port(parsed: httpx.URL) -> int:
    return parsed.port or (443 if parsed.scheme == "https" else 80)


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64): each must be public too."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in embedded if address is not None]
