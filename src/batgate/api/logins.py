"""Failed logins cost the caller, not the gateway (docs/security.md).

- Every failed login takes a token from its source address's bucket and, when it
  named a username, from that username's. While either is empty, a login is
  answered `429 RATE_LIMITED` with `Retry-After` before anything is checked: a
  throttled caller costs no Argon2 verification and no database read.
- At most `password_checks` Argon2 verifications (64 MiB and tens of milliseconds
  each) run at once in a process and `password_queue` more may wait; beyond that a
  password login is answered 429 at once. API keys (a SHA-256 and an index
  lookup) never wait behind them.
- Each failure is logged with the username and the address, never the password,
  and counted in `/metrics` (`batgate_auth_failures_total`, `…_throttled_total`).

The buckets live in each process's memory, bounded in size: behind a load
balancer an attacker spread over N API processes gets N times the allowance.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from batgate.api.errors import ApiError
from batgate.config import AuthSettings
from batgate.domain.ratelimit import TokenBucket
from batgate.observability import metrics

log = logging.getLogger(__name__)

MAX_TRACKED = 100_000  # buckets kept per process, least recently failed dropped first


class Buckets:
    """Token buckets by key, in memory, the least recently used dropped beyond `size`."""

    def __init__(self, bucket: TokenBucket, size: int = MAX_TRACKED) -> None:
        self._bucket = bucket
        self._size = size
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may fail again; 0 when it may now."""
        found = self._levels.get(key)
        if found is None:
            return 0.0
        level = self._bucket.level(*found, now)
        return 0.0 if level >= 1 else self._bucket.wait(level)

    def take(self, key: str, now: float) -> None:
        tokens, stamp = self._levels.pop(key, (self._bucket.burst, now))
        grant = self._bucket.grant(tokens, stamp, now, 1)
        self._levels[key] = (grant.left, now)
        while len(self._levels) > self._size:
            self._levels.popitem(last=False)


class LoginGuard:
    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        window = settings.failure_window
        per_address, per_user = settings.failures_per_address, settings.failures_per_username
        self._addresses = Buckets(TokenBucket(per_address / window, per_address))
        self._usernames = Buckets(TokenBucket(per_user / window, per_user))
        self._clock = clock
        self._checks = asyncio.Semaphore(settings.password_checks)
        self._room = settings.password_checks + settings.password_queue
        self._checking = 0  # password logins running or waiting for a slot

    def admit(self, address: str, username: str | None = None) -> None:
        """ApiError 429 while the address or the username may not try again."""
        now = self._clock()
        by_address = self._addresses.wait(address, now)
        by_user = self._usernames.wait(username, now) if username is not None else 0.0
        wait = max(by_address, by_user)
        if wait > 0:
            scope = "address" if by_address >= by_user else "username"
            metrics.auth_throttled(scope).inc()
            raise _throttled(f"too many failed logins from this {scope}; try again later", wait)

    def failed(self, address: str, method: str, reason: str, username: str | None = None) -> None:
        """A failed login: counted, logged, and charged to the address (and username)."""
        now = self._clock()
        self._addresses.take(address, now)
        if username is not None:
            self._usernames.take(username, now)
        metrics.auth_failures(method, reason).inc()
        who = "" if username is None else f" for username {username[:64]!r}"
        log.warning("failed login (%s, %s)%s from %s", method, reason, who, address)

    @asynccontextmanager
    async def password_check(self) -> AsyncIterator[None]:
        """A slot for one Argon2 verification; ApiError 429 when too many wait already."""
        if self._checking >= self._room:
            metrics.auth_throttled("busy").inc()
            raise _throttled("too many password logins at once; try again shortly", 1.0)
        self._checking += 1
        try:
            async with self._checks:
                yield
        finally:
            self._checking -= 1


def _throttled(message: str, wait: float) -> ApiError:
    return ApiError(429, "RATE_LIMITED", message, {"Retry-After": str(max(1, math.ceil(wait)))})
