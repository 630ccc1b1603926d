"""The engine: every long-running worker of one process, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from batgate.channels.base import Connector
from batgate.channels.registry import build_connectors, close_connectors, start_connectors
from batgate.config import Settings
from batgate.engine.changes import Changes
from batgate.engine.connector_watch import ConnectorWatch
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook, configured_rates, unpriced_channels
from batgate.engine.receipts import Reconciler
from batgate.engine.reception import Reception, inbound_policy
from batgate.engine.retention import Janitor
from batgate.engine.switchboard import Switchboard
from batgate.engine.webhooks import WebhookSender
from batgate.store.manager import Store

log = logging.getLogger(__name__)


class Engine:
    """The delivery engine of one process, built here for `serve` and `worker` alike."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.webhooks = WebhookSender(store, settings.webhooks)
        self._ratebook = RateBook(store, configured_rates(settings.rates))
        changes = Changes(store, settings.fx, on_events=self.webhooks.wake)
        # Carriers hand their receipts to the reconciler (engine.receipts).
        reception = Reception(
            store,
            inbound_policy(settings),
            on_events=self.webhooks.wake,
            on_replies=lambda: self.dispatcher.wake(),
        )
        self.reconciler = Reconciler(store, changes, self._ratebook, reception=reception)
        self._connectors = build_connectors(settings, self.reconciler)
        self.switchboard = Switchboard.from_settings(settings, self._connectors)
        self.dispatcher = Dispatcher(
            store,
            self.switchboard,
            self._ratebook,
            settings.dispatcher,
            settings.fx,
            on_events=self.webhooks.wake,
            reconciler=self.reconciler,
        )
        self._janitor = Janitor(store.retention, settings.retention)
        self.watch = ConnectorWatch(
            store,
            self.switchboard,
            self.dispatcher.worker,
            settings.dispatcher.connector_report_seconds,
        )
        self._carriers = bool(settings.connectors)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Bind to the carriers (waiting a moment for them), then start the workers."""
        for channel in unpriced_channels(await self._ratebook.table()):
            log.warning(
                "no rate for channel %s: its messages cost nothing "
                "(set one with [[rates]] or `batgate rates set`)",
                channel,
            )
        await start_connectors(self._connectors.values())
        await self.watch.once()  # a drained connector is skipped from the first hand-over
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        self._tasks.append(asyncio.create_task(self.webhooks.run(), name="webhooks"))
        self._tasks.append(asyncio.create_task(self._janitor.run(), name="retention"))
        self._tasks.append(asyncio.create_task(self.watch.run(), name="connectors"))
        if self._carriers:
            self._tasks.append(asyncio.create_task(self.reconciler.run(), name="receipts"))

    async def stop(self, timeout: float = 20.0) -> None:
        """Stop within `timeout` seconds, losing nothing and sending nothing twice.

        The dispatcher and the webhook sender claim nothing more and finish what they
        hold: the tick in hand is handed over and written, the webhooks under way are
        answered, and events claimed but not started go back to the queue. Then the
        carriers are closed (SMPP: a graceful unbind once nothing is being sent, the
        receipts that came meanwhile stored and acknowledged). What is still running
        when the time is up is cancelled: messages it had claimed come back to a
        worker when their lease runs out, as after a crash.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        closing = min(5.0, timeout / 4)  # kept for the carriers' unbind
        self.dispatcher.request_stop()
        self.webhooks.request_stop()
        graceful = [t for t in self._tasks if t.get_name() in ("dispatcher", "webhooks")]
        try:
            if graceful:
                await asyncio.wait(graceful, timeout=max(0.0, deadline - closing - loop.time()))
            late = [t.get_name() for t in graceful if not t.done()]
            if late:
                log.warning("stopping: %s did not finish in time, cancelled", ", ".join(late))
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._tasks.clear()
            await self.watch.forget()
            # After the dispatcher: a graceful unbind once nothing is being sent.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, deadline - loop.time())):
                    await close_connectors(self._connectors.values())

    @property
    def connectors(self) -> Mapping[str, Connector]:
        """Every connector hand-overs may go to, by name ("sandbox": the sandbox)."""
        return self._connectors

    def wake(self) -> None:
        self.dispatcher.wake()
