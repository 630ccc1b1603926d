"""Accepting a `callbackUrl`: never one that points inside (domain.addresses).

A literal address or a `localhost` name is judged as it is. Any other name is
resolved (at most `timeout` seconds, answers cached for `cache_seconds`), and
refused if any address it resolves to is internal. A name that does not resolve
now is accepted: the webhook sender judges what it resolves to when it connects,
and connects only to the addresses it judged.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from batgate.domain.addresses import AddressPolicy, literal_address
from batgate.domain.messages import ErrorCode, NewMessage, Rejection

Resolve = Callable[[str], Awaitable[list[str]]]
Judged = NewMessage | Rejection

_MAX_CACHED = 10_000


async def resolve_host(host: str) -> list[str]:
    """The addresses `host` resolves to now (the system's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class CallbackScreen:
    def __init__(
        self,
        policy: AddressPolicy,
        resolve: Resolve = resolve_host,
        timeout: float = 1.0,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def screen(self, judged: Sequence[Judged]) -> list[Judged]:
        """`judged`, with each message whose callbackUrl may not be called rejected."""
        hosts = {
            host
            for j in judged
            if isinstance(j, NewMessage) and j.callback_url
            for host in (urlsplit(j.callback_url).hostname,)
            if host
        }
        if not hosts:
            return list(judged)
        names = sorted(hosts)
        refusals = dict(zip(names, await asyncio.gather(*map(self.refusal, names)), strict=True))
        return [_checked(j, refusals) for j in judged]

    async def refusal(self, host: str) -> str | None:
        """Why a callback to `host` is refused; None when it is not."""
        if literal_address(host) is not None:
            return self._policy.host_refusal(host)
        quick = self._policy.host_refusal(host)
        if quick is not None:
            return quick
        cached = self._cache.get(host)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._resolve(host)
        except (OSError, TimeoutError, UnicodeError):
            return None  # unknown now: judged again when the sender connects
        found = (self._policy.refusal(a) for a in map(literal_address, addresses) if a)
        why = next((f"{host} resolves to {r}" for r in found if r is not None), None)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[host] = (why, self._clock() + self._cache_seconds)
        return why


def _checked(judged: Judged, refusals: dict[str, str | None]) -> Judged:
    if not isinstance(judged, NewMessage) or not judged.callback_url:
        return judged
    host = urlsplit(judged.callback_url).hostname or ""
    why = refusals.get(host)
    if why is None:
        return judged
    return Rejection(
        ErrorCode.INVALID_CALLBACK_URL,
        f"callbackUrl: {why}; batgate does not call internal addresses on a message's say-so",
    )
