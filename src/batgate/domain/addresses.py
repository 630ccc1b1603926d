"""Which addresses a URL from a customer may make batgate call (SSRF rules). Pure.

A `callbackUrl` arrives through the API, so it is hostile until checked: it must
not point batgate at itself, at the machine's other services, at the cloud's
metadata service (169.254.169.254) or into the operator's private network. An
address is refused unless it is globally routable unicast, or inside a range the
operator allowed (`webhooks.allow_private_callbacks`, for receivers on premises).
URLs the operator sets (account webhook URLs) are trusted and never checked here.

The checks run twice: when the message is accepted (a literal address, a
`localhost` name, or what the name resolves to then) and when the webhook
sender connects (what the name resolves to at that moment: DNS can change).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_KINDS: list[tuple[str, str]] = [
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address (cloud metadata lives there)"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
]


def internal_kind(address: Address) -> str | None:
    """What makes `address` internal ("a loopback address", …); None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return internal_kind(embedded)
    for attribute, kind in _KINDS:
        if getattr(address, attribute):
            return kind
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, …
        return "an address that is not globally routable"
    return None


def literal_address(host: str) -> Address | None:
    """`host` as an IP address when it is one (IPv6 without its brackets), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_localhost_name(host: str) -> bool:
    """`localhost` and its subdomains always mean this machine (RFC 6761 §6.3)."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, and the ranges the operator allowed besides."""

    allowed: tuple[Network, ...] = field(default_factory=tuple)

    @classmethod
    def allowing(cls, ranges: Iterable[str]) -> AddressPolicy:
        """From CIDR strings (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`); ValueError if one is bad."""
        return cls(tuple(ipaddress.ip_network(r, strict=False) for r in ranges))

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be called; None when it may."""
        kind = internal_kind(address)
        if kind is None or any(address in network for network in self.allowed):
            return None
        return f"{address} is {kind}"

    def host_refusal(self, host: str) -> str | None:
        """Why `host` may not be called, judged without DNS: a literal address or a
        localhost name; None for any other name (judged once resolved)."""
        address = literal_address(host)
        if address is not None:
            return self.refusal(address)
        if is_localhost_name(host):
            return self.refusal(ipaddress.IPv4Address("127.0.0.1"))
        return None
