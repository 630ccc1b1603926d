"""Per-account rate limit (SPEC §6): `rate` requests a second, bursts of `burst`, across
every API process.

The bucket lives in the database (:mod:`batgate.store.ratebuckets`). So that a
request does not cost a database write, a process takes a tenth of a second's
worth of tokens at a time and spends them locally; what it has not spent within
`hold` seconds it drops (never gives back: the total never exceeds the limit).
A refusal is remembered until the bucket can hold a token again, so a client
hammering a limited account costs no database work either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from batgate.api.errors import ApiError
from batgate.domain.ratelimit import Grant, TokenBucket


class TokenSource(Protocol):
    async def grant(self, account_id: int, bucket: TokenBucket, want: int, now: float) -> Grant:
        """Take up to `want` tokens from the account's shared bucket."""
        ...


@dataclass(slots=True)
class _Allowance:
    tokens: int
    until: float  # spend by then, or drop


class RateLimiter:
    def __init__(
        self,
        source: TokenSource,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.time,
        hold: float = 1.0,
    ) -> None:
        self._source = source
        self._bucket = TokenBucket(rate, float(burst))
        self._clock = clock
        self._hold = hold
        self._allowances: dict[int, _Allowance] = {}
        self._own_buckets: dict[tuple[float, int], TokenBucket] = {}
        self._refused_until: dict[int, float] = {}

    def take_now(self, account_id: int) -> bool:
        """Spend one token of this process's allowance; False when there is none left
        (then `take` decides, asking the shared bucket or refusing)."""
        allowance = self._allowances.get(account_id)
        if allowance is not None and allowance.tokens > 0 and self._clock() < allowance.until:
            allowance.tokens -= 1
            return True
        return False

    async def take(self, account_id: int, own: tuple[float, int] | None = None) -> None:
        """Spend one token, or raise ApiError 429 with `Retry-After` in whole seconds.
        `own`: the account's own (rate, burst), instead of the gateway's."""
        if self.take_now(account_id):
            return
        now = self._clock()
        bucket = self._bucket if own is None else self._own(own)
        refused_until = self._refused_until.get(account_id)
        if refused_until is not None and now < refused_until:
            raise self._refusal(refused_until - now, bucket)
        grant = await self._source.grant(account_id, bucket, bucket.chunk, now)
        if grant.granted == 0:
            wait = bucket.wait(grant.left)
            self._refused_until[account_id] = now + wait
            raise self._refusal(wait, bucket)
        self._refused_until.pop(account_id, None)
        self._allowances[account_id] = _Allowance(grant.granted - 1, now + self._hold)

    def _own(self, limit: tuple[float, int]) -> TokenBucket:
        bucket = self._own_buckets.get(limit)
        if bucket is None:
            bucket = self._own_buckets[limit] = TokenBucket(limit[0], float(limit[1]))
        return bucket

    def _refusal(self, wait: float, bucket: TokenBucket) -> ApiError:
        return ApiError(
            429,
            "RATE_LIMITED",
            f"too many requests: at most {bucket.rate:g}/s with bursts of {bucket.burst:g}",
            {"Retry-After": str(max(1, math.ceil(wait - 1e-9)))},
        )
