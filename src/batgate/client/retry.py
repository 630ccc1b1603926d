"""When to send the next request: retry backoff, polling pace and a client-side rate limit.

All three are data plus arithmetic; nothing here sleeps. The core turns their
answers into "sleep this long" commands, which `Client` runs with `time.sleep`
and `AsyncClient` with `asyncio.sleep`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from batgate.domain.retry import RetryPolicy

__all__ = ["PollPolicy", "RateLimiter", "Retries", "RetryPolicy", "exponential", "retry_after"]

Clock = Callable[[], float]


def exponential(
    first: float, factor: float, count: int, jitter: float, cap: float | None = None
) -> RetryPolicy:
    """`count` delays growing from `first` by `factor` (capped at `cap`), ±`jitter` spread."""
    delays = tuple(min(first * factor**n, cap or float("inf")) for n in range(count))
    return RetryPolicy(delays, jitter=jitter)


@dataclass(frozen=True, slots=True)
class Retries:
    """Which failed requests are tried again, and after how long.

    A request is retried after a connection error or timeout, or an answer whose
    status is in `statuses`, while `backoff` has delays left: by default 4 retries
    after ~0.5, 1, 2 and 4 s, each spread ±50 % so that many clients failing at once
    do not come back at once. A `Retry-After` header is honoured (the wait is at
    least that long); one longer than `max_retry_after` is not waited for, the error
    is raised at once. Reads are always retried; a send only when it carries an
    idempotency key, because without one a retried send may be stored twice.
    """

    backoff: RetryPolicy = field(default_factory=lambda: exponential(0.5, 2.0, 4, jitter=0.5))
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_retry_after: float = 60.0

    @classmethod
    def off(cls) -> Retries:
        return cls(backoff=RetryPolicy(()))

    @classmethod
    def exponential(
        cls,
        retries: int = 4,
        first: float = 0.5,
        factor: float = 2.0,
        jitter: float = 0.5,
        cap: float | None = 30.0,
        max_retry_after: float = 60.0,
    ) -> Retries:
        """`retries` tries after the first one, waiting `first`, `first*factor`, …"""
        return cls(
            exponential(first, factor, retries, jitter, cap), max_retry_after=max_retry_after
        )

    def delay(self, failures: int, retry_after_seconds: float | None = None) -> float | None:
        """Seconds to wait after the `failures`-th failed attempt, or None: give up."""
        backoff = self.backoff.delay(failures)
        if backoff is None:
            return None
        if retry_after_seconds is None:
            return backoff
        if retry_after_seconds > self.max_retry_after:
            return None
        return max(retry_after_seconds, backoff)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _growing(first: float, factor: float, cap: float, jitter: float) -> RetryPolicy:
    delays: list[float] = []
    delay = first
    while delay < cap and len(delays) < 32:
        delays.append(delay)
        delay *= factor
    return RetryPolicy(tuple(delays), jitter=jitter, after_last=cap)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often `wait_for_delivery` / `wait_for_all` look at a message that is not final.

    The first look is at once; then the waits follow `backoff` (1 s, growing by half
    each time up to 10 s, each ±20 %), never shorter than `min_interval`: by default
    a message is asked about at most once per second, as the SMSBAT guide asks.
    """

    backoff: RetryPolicy = field(default_factory=lambda: _growing(1.0, 1.5, 10.0, 0.2))
    min_interval: float = 1.0

    @classmethod
    def exponential(
        cls,
        first: float = 1.0,
        factor: float = 1.5,
        max_interval: float = 10.0,
        jitter: float = 0.2,
        min_interval: float = 1.0,
    ) -> PollPolicy:
        return cls(_growing(first, factor, max_interval, jitter), min_interval=min_interval)

    def delay(self, polls: int) -> float:
        """Seconds to wait after the `polls`-th look before the next one."""
        return max(self.min_interval, self.backoff.delay(polls) or self.min_interval)


class RateLimiter:
    """At most `rate` requests per second with bursts of `burst` (GCRA, by reservation).

    `reserve()` books the next free slot and answers how long to wait for it, so
    concurrent callers (threads or tasks) queue up fairly without polling.
    """

    def __init__(self, rate: float, burst: int = 1, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._tat = float("-inf")  # theoretical arrival time of the next request
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book one request; the seconds to wait before sending it (0.0: at once)."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            self._tat = tat + self._interval
            return max(0.0, tat - self._tolerance - now)
