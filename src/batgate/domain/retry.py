"""Retry policy as data, shared by message dispatch and webhook delivery."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays (seconds) before attempt 2, 3, …; `after_last` repeats until `give_up_after`.

    With `after_last=None` retries run out after the listed delays. `jitter` is a
    fraction: each delay is spread uniformly over ±jitter of itself, so many
    failures at once do not come back at once.
    """

    delays: tuple[float, ...]
    jitter: float = 0.1
    after_last: float | None = None
    give_up_after: float | None = None

    def delay(
        self, failures: int, elapsed: float = 0.0, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait after the `failures`-th failed attempt, or None: give up."""
        if failures < 1:
            raise ValueError("failures counts from 1")
        if self.give_up_after is not None and elapsed >= self.give_up_after:
            return None
        if failures <= len(self.delays):
            base = self.delays[failures - 1]
        elif self.after_last is not None:
            base = self.after_last
        else:
            return None
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))
