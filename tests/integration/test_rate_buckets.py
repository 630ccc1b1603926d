"""The rate limit's shared buckets on the real store, as several API processes use them."""

from __future__ import annotations

import asyncio

import pytest

from batgate.api.errors import ApiError
from batgate.api.ratelimit import RateLimiter
from batgate.domain.ratelimit import TokenBucket
from batgate.domain.records import Account
from batgate.store.manager import Store

T0 = 1_700_000_000.0


# (id, rate, burst, grants asked at T0 (want each), tokens granted in all)
GRANTS: list[tuple[str, float, float, list[int], int]] = [
    ("first-grant-fills-from-a-full-bucket", 10.0, 20.0, [5], 5),
    ("never-more-than-the-burst", 10.0, 20.0, [15, 15, 15], 20),
    ("whole-tokens-only", 0.5, 1.0, [1, 1], 1),
]


@pytest.mark.parametrize(
    ("rate", "burst", "wants", "total"), [pytest.param(*c[1:], id=c[0]) for c in GRANTS]
)
async def test_grants(
    store: Store, account: Account, rate: float, burst: float, wants: list[int], total: int
) -> None:
    bucket = TokenBucket(rate, burst)
    grants = [await store.rate_buckets.grant(account.id, bucket, w, T0) for w in wants]
    assert sum(g.granted for g in grants) == total


async def test_the_bucket_refills_with_time(store: Store, account: Account) -> None:
    bucket = TokenBucket(10.0, 20.0)
    assert (await store.rate_buckets.grant(account.id, bucket, 100, T0)).granted == 20
    assert (await store.rate_buckets.grant(account.id, bucket, 100, T0 + 0.5)).granted == 5
    assert (await store.rate_buckets.grant(account.id, bucket, 100, T0 + 100)).granted == 20


async def test_two_processes_hammering_one_bucket_never_exceed_it(
    store: Store, account: Account, database_url: str
) -> None:
    """Two stores (as two API processes would have), granting at once, share the burst."""
    other = Store.connect(database_url)
    bucket = TokenBucket(1.0, 50.0)
    try:
        grants = await asyncio.gather(
            *(s.rate_buckets.grant(account.id, bucket, 3, T0) for s in [store, other] * 20)
        )
    finally:
        await other.close()
    assert sum(g.granted for g in grants) == 50


async def test_limiters_of_two_processes_share_the_limit(
    store: Store, account: Account, database_url: str
) -> None:
    other = Store.connect(database_url)
    clock = [T0]
    limiters = [
        RateLimiter(s.rate_buckets, 10.0, 30, clock=lambda: clock[0]) for s in (store, other)
    ]

    async def passed(limiter: RateLimiter, count: int) -> int:
        n = 0
        for _ in range(count):
            try:
                await limiter.take(account.id)
                n += 1
            except ApiError as error:
                assert error.status == 429
        return n

    try:
        first = await asyncio.gather(*(passed(limiter, 40) for limiter in limiters))
        assert sum(first) == 30
        clock[0] += 2.0  # 20 more tokens (the unspent local ones are dropped)
        second = await asyncio.gather(*(passed(limiter, 40) for limiter in limiters))
        assert 18 <= sum(second) <= 20
    finally:
        await other.close()
