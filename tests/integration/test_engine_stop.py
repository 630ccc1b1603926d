"""Engine.stop ends every worker even when a wake-up meets the stop.

A worker idles in a wait for its wake-up event with a poll timeout. When the event
is set (new work, a webhook event) just before the engine cancels the worker, the
cancellation must still end it: Python 3.11's asyncio.wait_for returns the inner
result and drops such a cancellation, and the worker then polled on for ever while
Engine.stop waited for it.
"""

from __future__ import annotations

import asyncio

import pytest

from batgate.config import Settings
from batgate.engine.runner import Engine
from batgate.store.manager import Store

SETTINGS = Settings.model_construct()
BOUND = 30.0  # far beyond a stop's milliseconds: only a stop that never ends meets it


async def parked(event: asyncio.Event) -> None:
    """Until a worker waits on `event` (its idle wait between polls)."""
    while not getattr(event, "_waiters", None):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("timeout", [0.0, 20.0], ids=["cancelled at once", "graceful"])
async def test_stop_right_after_a_wake_up_ends_every_worker(store: Store, timeout: float) -> None:
    engine = Engine(store, SETTINGS)
    await engine.start()
    tasks = list(engine._tasks)
    await parked(engine.dispatcher._wakeup)
    await parked(engine.webhooks._wakeup)
    engine.wake()  # new work stored ...
    engine.webhooks.wake()  # ... and new events, just as the engine is stopped
    stopping = asyncio.ensure_future(engine.stop(timeout))
    done, _ = await asyncio.wait([stopping], timeout=BOUND)
    running = [t.get_name() for t in tasks if not t.done()]
    if not done:  # the bug: clean up so the failure is only this test's
        for task in tasks:
            task.cancel()
        await asyncio.wait([stopping], timeout=BOUND)
    assert done, f"Engine.stop never ended: {running} ignored their cancellation"
    assert all(t.done() for t in tasks)
