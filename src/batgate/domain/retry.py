"""Retry policy as data, shared by message dispatch and webhook delivery."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays (seconds) before attempt 2, 3, …; then `after_last` again and again.

    With `after_last=None` retries run out after the listed delays. With
    `give_up_after`, they run out once the schedule's own waits add up to that
    many seconds, so the give-up point depends only on the number of failures (a
    manual retry that resets the count gets the whole schedule again). `jitter`
    is a fraction: each delay is spread uniformly over ±jitter of itself, so many
    failures at once do not come back at once.
    """

    delays: tuple[float, ...]
    jitter: float = 0.1
    after_last: float | None = None
    give_up_after: float | None = None

    def delay(self, failures: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after the `failures`-th failed attempt, or None: give up."""
        if failures < 1:
            raise ValueError("failures counts from 1")
        if self.give_up_after is not None and self.waited(failures) >= self.give_up_after:
            return None
        base = self._base(failures)
        if base is None:
            return None
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))

    def waited(self, failures: int) -> float:
        """The schedule's waits before the `failures`-th failure, without jitter."""
        total = 0.0
        for n in range(1, failures):
            base = self._base(n)
            if base is None:
                break
            total += base
        return total

    def _base(self, failures: int) -> float | None:
        if failures <= len(self.delays):
            return self.delays[failures - 1]
        return self.after_last
