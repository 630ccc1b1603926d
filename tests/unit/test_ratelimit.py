"""Per-account token buckets (SPEC §6), on an injected clock."""

from __future__ import annotations

import pytest

from batgate.api.errors import ApiError
from batgate.api.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def passes(limiter: RateLimiter, account: int, count: int) -> int:
    """How many of `count` immediate requests pass."""
    passed = 0
    for _ in range(count):
        try:
            limiter.take(account)
        except ApiError:
            continue
        passed += 1
    return passed


def rejection(limiter: RateLimiter, account: int) -> ApiError:
    with pytest.raises(ApiError) as info:
        limiter.take(account)
    return info.value


@pytest.mark.parametrize(("rate", "burst"), [(100.0, 200), (8.0, 5), (1.0, 1), (0.5, 3)])
def test_burst_then_limited(rate: float, burst: int) -> None:
    limiter = RateLimiter(rate, burst, clock=Clock())
    assert passes(limiter, 1, burst + 10) == burst


def test_rejection_shape() -> None:
    limiter = RateLimiter(8.0, 2, clock=Clock())
    passes(limiter, 1, 2)
    error = rejection(limiter, 1)
    assert (error.status, error.code) == (429, "RATE_LIMITED")
    assert error.headers == {"Retry-After": "1"}


# (id, rate, burst, seconds waited after the bucket ran dry, requests that then pass)
REFILLS: list[tuple[str, float, int, float, int]] = [
    ("nothing-yet", 8.0, 4, 0.0, 0),
    ("less-than-one-token", 8.0, 4, 0.0625, 0),
    ("one-token", 8.0, 4, 0.125, 1),
    ("two-tokens", 8.0, 4, 0.25, 2),
    ("capped-at-burst", 8.0, 4, 1000.0, 4),
    ("slow-rate", 0.5, 2, 2.0, 1),
    ("slow-rate-partial", 0.5, 2, 1.5, 0),
]


@pytest.mark.parametrize(
    ("rate", "burst", "wait", "expected"), [pytest.param(*c[1:], id=c[0]) for c in REFILLS]
)
def test_refill(rate: float, burst: int, wait: float, expected: int) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst, clock=clock)
    assert passes(limiter, 1, burst) == burst
    clock.now += wait
    assert passes(limiter, 1, burst + 5) == expected


# (id, rate, burst, seconds waited after running dry, Retry-After)
RETRY_AFTER: list[tuple[str, float, int, float, str]] = [
    ("fast-rate-rounds-up-to-one", 100.0, 200, 0.0, "1"),
    ("one-per-second", 1.0, 1, 0.0, "1"),
    ("one-every-two-seconds", 0.5, 1, 0.0, "2"),
    ("one-every-four-seconds", 0.25, 1, 0.0, "4"),
    ("partly-refilled", 0.25, 1, 2.0, "2"),
    ("fraction-rounds-up", 0.3, 1, 0.0, "4"),
]


@pytest.mark.parametrize(
    ("rate", "burst", "wait", "retry_after"),
    [pytest.param(*c[1:], id=c[0]) for c in RETRY_AFTER],
)
def test_retry_after(rate: float, burst: int, wait: float, retry_after: str) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst, clock=clock)
    passes(limiter, 1, burst)
    clock.now += wait
    assert rejection(limiter, 1).headers["Retry-After"] == retry_after


@pytest.mark.parametrize(("rate", "burst"), [(0.3, 1), (0.25, 2), (8.0, 3), (100.0, 200)])
def test_waiting_retry_after_is_enough(rate: float, burst: int) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst, clock=clock)
    passes(limiter, 1, burst)
    clock.now += int(rejection(limiter, 1).headers["Retry-After"])
    limiter.take(1)  # does not raise


def test_rejected_requests_do_not_spend_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.take(1)
    for _ in range(50):
        rejection(limiter, 1)
        clock.now += 0.015625
    clock.now += 1.0 - 50 * 0.015625
    limiter.take(1)


def test_accounts_are_isolated() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 3, clock=clock)
    assert passes(limiter, 1, 10) == 3
    assert passes(limiter, 2, 10) == 3
    assert passes(limiter, 3, 1) == 1
    clock.now += 1.0
    assert passes(limiter, 1, 10) == 1
    assert passes(limiter, 3, 10) == 3
