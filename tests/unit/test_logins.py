"""The login guard (api.logins) on a clock of the test's own: who may try, who waits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from batgate.api.errors import ApiError
from batgate.api.logins import Buckets, LoginGuard
from batgate.config import AuthSettings
from batgate.domain.ratelimit import TokenBucket

SETTINGS = AuthSettings(
    failures_per_address=6,
    failures_per_username=3,
    failure_window=60,
    password_checks=2,
    password_queue=3,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(guard: LoginGuard, address: str, username: str | None = None) -> ApiError | None:
    try:
        guard.admit(address, username)
    except ApiError as exc:
        return exc
    return None


STEPS = [
    # (id, failures before: (address, username) each, the login tried, refused?, Retry-After)
    ("nothing failed yet", [], ("10.0.0.1", "alice"), False, None),
    (
        "two wrong passwords: a third try",
        [("10.0.0.1", "alice")] * 2,
        ("10.0.0.1", "alice"),
        False,
        None,
    ),
    ("three: the username waits", [("10.0.0.1", "alice")] * 3, ("10.0.0.1", "alice"), True, "20"),
    (
        "the username waits from any address",
        [("10.0.0.1", "alice")] * 3,
        ("10.0.0.2", "alice"),
        True,
        "20",
    ),
    (
        "another username from that address",
        [("10.0.0.1", "alice")] * 3,
        ("10.0.0.1", "bob"),
        False,
        None,
    ),
    (
        "six from one address: it waits",
        [("10.0.0.1", u) for u in "abcdef"],
        ("10.0.0.1", "zed"),
        True,
        "10",
    ),
    (
        "an API key from that address waits too",
        [("10.0.0.1", u) for u in "abcdef"],
        ("10.0.0.1", None),
        True,
        "10",
    ),
    (
        "another address does not",
        [("10.0.0.1", u) for u in "abcdef"],
        ("10.0.0.2", "zed"),
        False,
        None,
    ),
    ("API keys: the address only", [("10.0.0.1", None)] * 5, ("10.0.0.1", None), False, None),
]


@pytest.mark.parametrize(
    ("failures", "login", "is_refused", "retry_after"),
    [s[1:] for s in STEPS],
    ids=[s[0] for s in STEPS],
)
def test_who_may_try_again(
    failures: list[tuple[str, str | None]],
    login: tuple[str, str | None],
    is_refused: bool,
    retry_after: str | None,
) -> None:
    guard = LoginGuard(SETTINGS, Clock())
    for address, username in failures:
        guard.failed(address, "password" if username else "api_key", "wrong credentials", username)
    error = refused(guard, *login)
    assert (error is not None) is is_refused
    if error is not None:
        assert (error.status, error.code) == (429, "RATE_LIMITED")
        assert error.headers["Retry-After"] == retry_after


def test_a_throttled_username_may_try_again_once_a_token_is_back() -> None:
    clock = Clock()
    guard = LoginGuard(SETTINGS, clock)
    for _ in range(3):
        guard.failed("10.0.0.1", "password", "wrong credentials", "alice")
    assert refused(guard, "10.0.0.1", "alice") is not None
    clock.now += 19.9  # 3 per 60 s: one back every 20 s
    assert refused(guard, "10.0.0.1", "alice") is not None
    clock.now += 0.1
    assert refused(guard, "10.0.0.1", "alice") is None


def test_failures_are_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    guard = LoginGuard(SETTINGS, Clock())
    with caplog.at_level(logging.WARNING, logger="batgate.api.logins"):
        guard.failed("192.0.2.7", "password", "wrong credentials", "alice\nforged line")
    [record] = caplog.records
    text = record.getMessage()
    assert "192.0.2.7" in text and "'alice\\nforged line'" in text and "\n" not in text


def test_buckets_forget_the_least_recently_failed_beyond_their_size() -> None:
    buckets = Buckets(TokenBucket(1 / 60, 1), size=2)
    for key in ("a", "b", "c"):
        buckets.take(key, 0.0)
    assert buckets.wait("a", 0.0) == 0  # forgotten
    assert buckets.wait("b", 0.0) > 0 and buckets.wait("c", 0.0) > 0


async def test_password_checks_run_two_at_a_time_and_three_wait() -> None:
    guard = LoginGuard(SETTINGS, Clock())
    running, most = 0, 0
    release = asyncio.Event()

    async def check() -> str:
        nonlocal running, most
        try:
            async with guard.password_check():
                running += 1
                most = max(most, running)
                await release.wait()
                running -= 1
                return "checked"
        except ApiError as exc:
            return f"{exc.status} {exc.headers['Retry-After']}"

    tasks = [asyncio.create_task(check()) for _ in range(7)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*tasks)
    assert most == 2
    assert sorted(outcomes) == ["429 1"] * 2 + ["checked"] * 5
