"""Retry policy as data: delays, jitter bounds, repeating after the last, giving up."""

from __future__ import annotations

import random

import pytest

from batgate.config import WebhookSettings
from batgate.domain.retry import RetryPolicy
from batgate.engine.webhooks import webhook_policy

THREE = RetryPolicy((0.5, 1.0, 2.0), jitter=0)
REPEAT = RetryPolicy((1.0, 5.0), jitter=0, after_last=60.0)
HOUR = RetryPolicy((1.0,), jitter=0, after_last=60.0, give_up_after=3600)

# (id, policy, failures, expected delay or None); jitter 0 so delays are exact
CASES: list[tuple[str, RetryPolicy, int, float | None]] = [
    ("first", THREE, 1, 0.5),
    ("second", THREE, 2, 1.0),
    ("last", THREE, 3, 2.0),
    ("run-out", THREE, 4, None),
    ("run-out-far", THREE, 100, None),
    ("no-delays", RetryPolicy((), jitter=0), 1, None),
    ("after-last", REPEAT, 3, 60.0),
    ("after-last-far", REPEAT, 500, 60.0),
    ("only-after-last", RetryPolicy((), jitter=0, after_last=30.0), 1, 30.0),
    # HOUR waits 1, 60, 60, ...: before the n-th failure 1 + 60 × (n - 2) seconds.
    ("give-up-not-yet", HOUR, 61, 60.0),  # waited 3541 s
    ("give-up-reached", HOUR, 62, None),  # waited 3601 s
    ("give-up-far", HOUR, 1000, None),
    ("give-up-first-never", RetryPolicy((5.0,), jitter=0, give_up_after=0.0), 1, None),
    (
        "give-up-within-list",
        RetryPolicy((1.0, 2.0, 4.0), jitter=0, give_up_after=3.0),
        3,
        None,
    ),
    ("zero-delay", RetryPolicy((0.0,), jitter=0.5), 1, 0.0),
]


@pytest.mark.parametrize(
    ("policy", "failures", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_delay(policy: RetryPolicy, failures: int, expected: float | None) -> None:
    assert policy.delay(failures) == expected


@pytest.mark.parametrize(
    ("policy", "failures", "waited"),
    [
        (THREE, 1, 0.0),
        (THREE, 2, 0.5),
        (THREE, 4, 3.5),
        (THREE, 10, 3.5),  # nothing is waited after the schedule ran out
        (REPEAT, 3, 6.0),
        (REPEAT, 5, 126.0),
        (HOUR, 62, 3601.0),
    ],
)
def test_waited(policy: RetryPolicy, failures: int, waited: float) -> None:
    assert policy.waited(failures) == waited


@pytest.mark.parametrize("failures", [0, -1])
def test_failures_count_from_one(failures: int) -> None:
    with pytest.raises(ValueError):
        RetryPolicy((1.0,)).delay(failures)


@pytest.mark.parametrize(
    ("jitter", "base", "failures"),
    [(0.1, 0.5, 1), (0.2, 2.0, 3), (0.5, 10.0, 2), (1.0, 4.0, 1), (0.3, 60.0, 9)],
)
def test_jitter_stays_within_bounds(jitter: float, base: float, failures: int) -> None:
    policy = RetryPolicy(
        tuple(base if i == failures - 1 else 1.0 for i in range(3)),
        jitter=jitter,
        after_last=base,
    )
    rng = random.Random(1234)
    values = [policy.delay(failures, rng=rng) for _ in range(2_000)]
    low, high = max(0.0, base * (1 - jitter)), base * (1 + jitter)
    assert all(v is not None and low <= v <= high for v in values)
    spread = [v for v in values if v is not None]
    # Spread over the range, not stuck at one point.
    assert min(spread) < base - base * jitter / 2
    assert max(spread) > base + base * jitter / 2


def test_jitter_is_deterministic_with_a_seeded_random() -> None:
    policy = RetryPolicy((1.0, 2.0, 4.0), jitter=0.25)
    first = [policy.delay(n, rng=random.Random(7)) for n in (1, 2, 3)]
    second = [policy.delay(n, rng=random.Random(7)) for n in (1, 2, 3)]
    assert first == second
    assert first != [1.0, 2.0, 4.0]


def test_jitter_never_negative() -> None:
    policy = RetryPolicy((1.0,), jitter=3.0)
    rng = random.Random(99)
    values = [policy.delay(1, rng=rng) for _ in range(500)]
    assert all(v is not None and v >= 0.0 for v in values)
    assert 0.0 in values


def test_give_up_point_ignores_jitter() -> None:
    policy = RetryPolicy((1.0,), jitter=0.5, after_last=60.0, give_up_after=3600)
    rng = random.Random(5)
    assert all(policy.delay(61, rng=rng) is not None for _ in range(100))
    assert all(policy.delay(62, rng=rng) is None for _ in range(100))


def test_policy_is_data() -> None:
    assert RetryPolicy((1.0, 2.0)) == RetryPolicy((1.0, 2.0))
    with pytest.raises(AttributeError):
        RetryPolicy((1.0,)).jitter = 0.5  # type: ignore[misc]


def test_webhook_schedule_grows_and_lasts_a_day() -> None:
    """SPEC §4: retried with growing delays for at least 24 hours."""
    policy = webhook_policy(WebhookSettings(jitter=0.0))
    delays: list[float] = []
    while (delay := policy.delay(len(delays) + 1)) is not None:
        delays.append(delay)
        assert len(delays) < 1_000
    assert delays == sorted(delays)
    assert delays[0] < delays[-1]
    assert sum(delays) >= 24 * 3600
