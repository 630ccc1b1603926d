"""Per-account token buckets (SPEC §6), on an injected clock.

The limiter draws on a bucket kept in memory here (the same arithmetic the
store applies to its shared row: tests/integration/test_rate_buckets.py).
"""

from __future__ import annotations

import pytest

from batgate.api.errors import ApiError
from batgate.api.ratelimit import RateLimiter
from batgate.domain.ratelimit import Grant, Pacer, TokenBucket


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Buckets:
    """The shared buckets, in memory; counts how often the limiter asked."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[float, float]] = {}
        self.asked = 0

    async def grant(self, account_id: int, bucket: TokenBucket, want: int, now: float) -> Grant:
        self.asked += 1
        tokens, stamp = self.rows.get(account_id, (bucket.burst, now))
        grant = bucket.grant(tokens, stamp, now, want)
        self.rows[account_id] = (grant.left, max(now, stamp))
        return grant


def limiter_of(rate: float, burst: int, clock: Clock, source: Buckets | None = None) -> RateLimiter:
    return RateLimiter(source or Buckets(), rate, burst, clock=clock)


async def passes(limiter: RateLimiter, account: int, count: int) -> int:
    """How many of `count` immediate requests pass."""
    passed = 0
    for _ in range(count):
        try:
            await limiter.take(account)
        except ApiError:
            continue
        passed += 1
    return passed


async def rejection(limiter: RateLimiter, account: int) -> ApiError:
    with pytest.raises(ApiError) as info:
        await limiter.take(account)
    return info.value


@pytest.mark.parametrize(("rate", "burst"), [(100.0, 200), (8.0, 5), (1.0, 1), (0.5, 3)])
async def test_burst_then_limited(rate: float, burst: int) -> None:
    limiter = limiter_of(rate, burst, Clock())
    assert await passes(limiter, 1, burst + 10) == burst


async def test_rejection_shape() -> None:
    limiter = limiter_of(8.0, 2, Clock())
    await passes(limiter, 1, 2)
    error = await rejection(limiter, 1)
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
async def test_refill(rate: float, burst: int, wait: float, expected: int) -> None:
    clock = Clock()
    limiter = limiter_of(rate, burst, clock)
    assert await passes(limiter, 1, burst) == burst
    clock.now += wait
    assert await passes(limiter, 1, burst + 5) == expected


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
async def test_retry_after(rate: float, burst: int, wait: float, retry_after: str) -> None:
    clock = Clock()
    limiter = limiter_of(rate, burst, clock)
    await passes(limiter, 1, burst)
    clock.now += wait
    assert (await rejection(limiter, 1)).headers["Retry-After"] == retry_after


@pytest.mark.parametrize(("rate", "burst"), [(0.3, 1), (0.25, 2), (8.0, 3), (100.0, 200)])
async def test_waiting_retry_after_is_enough(rate: float, burst: int) -> None:
    clock = Clock()
    limiter = limiter_of(rate, burst, clock)
    await passes(limiter, 1, burst)
    clock.now += int((await rejection(limiter, 1)).headers["Retry-After"])
    await limiter.take(1)  # does not raise


async def test_rejected_requests_do_not_spend_tokens() -> None:
    clock = Clock()
    limiter = limiter_of(1.0, 1, clock)
    await limiter.take(1)
    for _ in range(50):
        await rejection(limiter, 1)
        clock.now += 0.015625
    clock.now += 1.0 - 50 * 0.015625
    await limiter.take(1)


async def test_accounts_are_isolated() -> None:
    clock = Clock()
    limiter = limiter_of(1.0, 3, clock)
    assert await passes(limiter, 1, 10) == 3
    assert await passes(limiter, 2, 10) == 3
    assert await passes(limiter, 3, 1) == 1
    clock.now += 1.0
    assert await passes(limiter, 1, 10) == 1
    assert await passes(limiter, 3, 10) == 3


@pytest.mark.parametrize(
    ("rate", "burst", "processes"), [(100.0, 200, 2), (8.0, 5, 3), (1.0, 3, 4)]
)
async def test_processes_share_one_bucket(rate: float, burst: int, processes: int) -> None:
    clock = Clock()
    shared = Buckets()
    limiters = [limiter_of(rate, burst, clock, shared) for _ in range(processes)]
    passed = [await passes(limiter, 1, burst) for limiter in limiters]
    assert sum(passed) == burst
    clock.now += 1.0
    passed = [await passes(limiter, 1, burst) for limiter in limiters]
    assert sum(passed) <= rate + 1


async def test_a_process_asks_for_a_tenth_of_a_second_at_a_time() -> None:
    clock, shared = Clock(), Buckets()
    limiter = limiter_of(100.0, 200, clock, shared)
    assert await passes(limiter, 1, 50) == 50
    assert shared.asked == 5


async def test_unspent_tokens_are_dropped_after_the_hold() -> None:
    clock, shared = Clock(), Buckets()
    limiter = limiter_of(100.0, 10, clock, shared)
    await limiter.take(1)  # takes 10 from the bucket, spends 1
    clock.now += 1.5
    await limiter.take(1)  # the 9 left are dropped; a new grant
    assert shared.asked == 2
    assert shared.rows[1][0] == pytest.approx(0.0)


async def test_a_refused_client_costs_no_database_work() -> None:
    clock, shared = Clock(), Buckets()
    limiter = limiter_of(1.0, 1, clock, shared)
    await limiter.take(1)
    for _ in range(100):
        await rejection(limiter, 1)
    assert shared.asked == 2


TAKE_NOW = [
    # (id, tokens taken with `take` first, seconds passed, take_now's answer, grants asked)
    ("nothing in hand yet", 0, 0.0, False, 0),
    ("a token of the allowance in hand", 1, 0.0, True, 1),
    ("the allowance spent", 10, 0.0, False, 1),
    ("the allowance held too long", 1, 1.5, False, 1),
]


@pytest.mark.parametrize(
    ("taken", "later", "answer", "asked"), [c[1:] for c in TAKE_NOW], ids=[c[0] for c in TAKE_NOW]
)
async def test_take_now_spends_only_what_the_process_holds(
    taken: int, later: float, answer: bool, asked: int
) -> None:
    """take_now never asks the shared bucket: it spends the allowance or says no."""
    clock, shared = Clock(), Buckets()
    limiter = limiter_of(100.0, 10, clock, shared)  # a tenth of a second: 10 at a time
    for _ in range(taken):
        await limiter.take(1)
    clock.now += later
    assert limiter.take_now(1) is answer
    assert shared.asked == asked
    if answer:  # the token taken is gone: the allowance has one fewer
        left = sum(limiter.take_now(1) for _ in range(20))
        assert left == 10 - taken - 1


# -- an SMPP link's throughput limit: evenly spaced slots ------------------------------------

PACING = [
    # (id, rate per second, (time asked, deadline) in order, the waits answered; None: refused)
    ("no limit", 0.0, [(0.0, 9.0), (0.0, 9.0), (0.0, 9.0)], [0.0, 0.0, 0.0]),
    ("a burst is spread out", 20.0, [(0.0, 9.0)] * 4, [0.0, 0.05, 0.10, 0.15]),
    ("asked after its slot: no wait", 10.0, [(0.0, 9.0), (0.5, 9.0), (0.55, 9.0)], [0, 0, 0.05]),
    ("a slot after the deadline", 5.0, [(0.0, 9.0), (0.0, 0.1), (0.0, 9.0)], [0.0, None, 0.2]),
    ("deadline passed, no limit", 0.0, [(1.0, 0.5)], [None]),
]


@pytest.mark.parametrize(
    ("rate", "asks", "waits"), [c[1:] for c in PACING], ids=[c[0] for c in PACING]
)
def test_pacer_slots(
    rate: float, asks: list[tuple[float, float]], waits: list[float | None]
) -> None:
    pacer = Pacer(rate)
    answers = [pacer.reserve(now, deadline) for now, deadline in asks]
    assert answers == pytest.approx(waits)
    assert pacer.granted == sum(w is not None for w in waits)
