"""Connecting to a message's `callbackUrl`: only to addresses judged public then.

The webhook sender sends callback URLs through a session whose resolver drops
every address `AddressPolicy` refuses, so a name that resolved to a public
address when the message was accepted and to an internal one now is not called.
A literal address never reaches a resolver (aiohttp connects to it directly), so
`refusal` judges the URL's host before the request.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from batgate.domain.addresses import AddressPolicy, literal_address


class RefusedAddress(OSError):
    """Every address of the host is internal: nothing was connected to."""


class GuardedResolver(AbstractResolver):
    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for result in await self._inner.resolve(host, port, family):
            address = literal_address(result["host"])
            why = "not an IP address" if address is None else self._policy.refusal(address)
            if why is None:
                allowed.append(result)
            else:
                refused.append(why)
        if not allowed:
            raise RefusedAddress(f"{host} resolves only to internal addresses: {refused}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def refusal(policy: AddressPolicy, url: str) -> str | None:
    """Why `url`'s host may not be called without resolving it (a literal address, a
    localhost name); None for a name, which the resolver judges."""
    host = urlsplit(url).hostname or ""
    return policy.host_refusal(host)
