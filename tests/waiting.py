"""Waiting in tests: every wait has a deadline, and says on expiry what it waited for.

A wait polls a `probe` until `done(what the probe saw)`, and fails after `timeout`
seconds with an AssertionError naming what it waited for and what it saw last. The
default deadline, and every deadline passed in, stays well under pytest-timeout's
(pyproject.toml), so a stuck test fails with these words, not with a killed process.

The async `until` also bounds each probe: an `await` that never returns (a lost
wake-up, a pool that never hands out a connection) fails the wait at its deadline,
with the stacks of the event loop's tasks, instead of hanging the test.

Imported by name (tests are not a package), from every test directory.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
LONGEST = 90.0  # pytest-timeout is 120 s: a wait's failure must come first
_SHOWN = 2000  # characters of the last thing seen, in a failure


def _seen(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"… ({len(text)} characters)"


def _check(timeout: float) -> None:
    if not 0 < timeout <= LONGEST:
        raise ValueError(f"a wait's timeout must be in (0, {LONGEST}] s, got {timeout}")


def _failure(what: str, timeout: float, seen: Any) -> AssertionError:
    return AssertionError(
        f"timed out after {timeout:g} s waiting for {what}; last seen: {_seen(seen)}"
    )


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
) -> T:
    """`probe()` again and again until `done` of its answer; that answer."""
    _check(timeout)
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if done(seen):
            return seen
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, seen)
        time.sleep(interval)


def wait_for(
    ready: Callable[[], bool], what: str, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.05
) -> None:
    """Until `ready()` is true (for a condition with nothing worth showing)."""
    wait_until(ready, bool, what, timeout, interval)


def task_stacks() -> str:
    """Every task of the running loop and where it waits."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(limit=8, file=out)
    return out.getvalue()


async def until(
    probe: Callable[[], Awaitable[T]] | Callable[[], T],
    done: Callable[[T], bool],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
) -> T:
    """The async `wait_until`: `probe` may be a coroutine function; a probe that hangs
    fails the wait at the deadline, showing where every task of the loop waits."""
    _check(timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: Any = "nothing yet"
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                answer = probe()
                seen = await answer if inspect.isawaitable(answer) else answer
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}: a probe never returned; "
                f"last seen: {_seen(seen)}\nthe tasks:\n{task_stacks()}"
            ) from None
        if done(seen):
            return seen
        if loop.time() >= deadline:
            raise _failure(what, timeout, seen)
        await asyncio.sleep(interval)


async def bounded(awaitable: Awaitable[T], what: str, timeout: float = DEFAULT_TIMEOUT) -> T:
    """`await awaitable` within `timeout`; on expiry, what it was and the tasks' stacks."""
    _check(timeout)
    try:
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError:
        raise AssertionError(
            f"timed out after {timeout:g} s waiting for {what}\nthe tasks:\n{task_stacks()}"
        ) from None
