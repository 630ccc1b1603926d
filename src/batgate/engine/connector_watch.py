"""The connectors' shared state: every few seconds an engine reads the operator's
switches (`batgate connectors drain NAME` / `enable NAME`) and writes what it sees of
each connector (`batgate connectors`), so that a switch takes effect in every
process within `dispatcher.connector_report_seconds` and the operator sees them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from batgate.engine.switchboard import Switchboard
from batgate.observability import metrics
from batgate.store.manager import Store

log = logging.getLogger(__name__)

STATES = ("up", "down", "circuit-open", "drained")


class ConnectorWatch:
    def __init__(
        self,
        store: Store,
        switchboard: Switchboard,
        worker: str,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._switchboard = switchboard
        self._worker = worker
        self._interval = interval
        self._clock = clock

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("reading the connector switches failed")
            await asyncio.sleep(self._interval)

    async def once(self) -> None:
        self._switchboard.drain(await self._store.connectors.drained())
        reports = self._switchboard.reports()
        await self._store.connectors.report(self._worker, reports, self._clock())
        for report in reports:
            metrics.connector_in_flight(report.connector).set(report.in_flight)
            for state in STATES:
                metrics.connector_state(report.connector, state).set(report.state == state)

    async def forget(self) -> None:
        """This process stops: its view goes with it."""
        with contextlib.suppress(Exception):
            await self._store.connectors.forget(self._worker)
