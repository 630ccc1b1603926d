"""The per-account token bucket (SPEC §6), as pure arithmetic on (tokens, stamp).

The bucket itself is kept in the database, so that every API process draws on
the same one (see :mod:`batgate.store.ratebuckets` and :mod:`batgate.api.ratelimit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Grant:
    """Tokens handed out, and how many were left in the bucket after that."""

    granted: int
    left: float


@dataclass(frozen=True, slots=True)
class TokenBucket:
    rate: float  # tokens a second
    burst: float  # at most this many saved up

    def level(self, tokens: float, stamp: float, now: float) -> float:
        """The tokens in a bucket that held `tokens` at `stamp`, at `now`."""
        return min(self.burst, tokens + max(0.0, now - stamp) * self.rate)

    def grant(self, tokens: float, stamp: float, now: float, want: int) -> Grant:
        """Take up to `want` whole tokens from the bucket as it is at `now`."""
        level = self.level(tokens, stamp, now)
        granted = max(0, min(want, math.floor(level + 1e-9)))
        return Grant(granted, level - granted)

    def wait(self, left: float) -> float:
        """Seconds until a bucket holding `left` tokens holds one."""
        return max(0.0, (1.0 - left) / self.rate)

    @property
    def chunk(self) -> int:
        """How many tokens a process asks for at once: a tenth of a second's worth."""
        return max(1, min(int(self.burst), math.ceil(self.rate / 10)))


@dataclass(slots=True)
class Pacer:
    """Evenly spaced slots, at most `rate` a second (0: no limit): an SMPP link's
    throughput limit. Pure: the caller passes its clock's time and sleeps the wait."""

    rate: float
    next_slot: float = 0.0
    granted: int = 0  # slots handed out so far

    def reserve(self, now: float, deadline: float = math.inf) -> float | None:
        """Seconds to wait before sending at `now`, the slot then reserved; None, and
        nothing reserved, when the next free slot comes after `deadline`."""
        slot = now if self.rate <= 0 else max(now, self.next_slot)
        if slot > deadline:
            return None
        if self.rate > 0:
            self.next_slot = slot + 1.0 / self.rate
        self.granted += 1
        return slot - now
