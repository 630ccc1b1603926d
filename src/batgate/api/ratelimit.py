"""Per-account token buckets (SPEC §6): `rate` tokens a second, at most `burst` saved up.

Kept in each API process's memory: with N API processes an account may get up to
N × rate in total. That is the usual trade (no shared round trip on every
request); docs/operations.md says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from batgate.api.errors import ApiError


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, account_id: int) -> None:
        """Spend one token, or raise ApiError 429 with `Retry-After` in whole seconds."""
        now = self._clock()
        tokens, stamp = self._buckets.get(account_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens < 1.0:
            self._buckets[account_id] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / self._rate))
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"too many requests: at most {self._rate:g}/s with bursts of {self._burst:g}",
                {"Retry-After": str(wait)},
            )
        self._buckets[account_id] = (tokens - 1.0, now)
