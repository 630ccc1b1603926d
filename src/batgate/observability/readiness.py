"""Readiness: does the database answer? (`GET /readyz`, on the API and on workers.)

Liveness (`/healthz`) asks nothing of the database: a process whose database is
away should be taken out of the load balancer, not restarted.
"""

from __future__ import annotations

import asyncio
import logging
import time

from batgate.api.errors import error_body
from batgate.store.gauges import Gauges

log = logging.getLogger(__name__)

READY = b'{"status":"ready"}'
NOT_READY = error_body("NOT_READY", "the database does not answer; the server log has the details")


SHUTTING_DOWN = error_body("NOT_READY", "shutting down: send new work to another process")


class Shutdown:
    """When this process began to stop (SIGTERM): /readyz answers 503 from then on."""

    def __init__(self) -> None:
        self.began_at: float | None = None

    def begin(self) -> None:
        if self.began_at is None:
            self.began_at = time.monotonic()

    @property
    def begun(self) -> bool:
        return self.began_at is not None

    def remaining(self, timeout: float) -> float:
        """What is left of `timeout` since the shutdown began (all of it before)."""
        if self.began_at is None:
            return timeout
        return max(0.0, timeout - (time.monotonic() - self.began_at))


async def check(gauges: Gauges, timeout: float) -> bool:
    """True when the database answers a trivial query within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):  # not wait_for: see Dispatcher._idle
            await gauges.ping()
    except TimeoutError:
        log.warning("not ready: the database gave no answer within %g s", timeout)
        return False
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        log.warning("not ready: %s: %s", type(exc).__name__, detail)
        return False
    return True


async def answer(
    gauges: Gauges, timeout: float, shutdown: Shutdown | None = None
) -> tuple[int, bytes]:
    """The `/readyz` answer: 200 `{"status": "ready"}`, or 503 in the SPEC §6 shape
    (while the database does not answer, and from the first moment of a shutdown)."""
    if shutdown is not None and shutdown.begun:
        return 503, SHUTTING_DOWN
    return (200, READY) if await check(gauges, timeout) else (503, NOT_READY)
