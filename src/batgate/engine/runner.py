"""The engine: every long-running worker of one process, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

from batgate.channels.base import Connector
from batgate.channels.registry import build_connectors, close_connectors, start_connectors
from batgate.config import Settings
from batgate.domain.messages import Channel
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook, configured_rates
from batgate.engine.receipts import StoredReceipts
from batgate.engine.webhooks import WebhookSender
from batgate.store.manager import Store


class Engine:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.webhooks = WebhookSender(store, settings.webhooks)
        self._receipts = StoredReceipts(store.receipts, self._apply_receipts)
        self._connectors = build_connectors(settings, self._receipts)
        self.dispatcher = Dispatcher(
            store,
            self._connectors,
            RateBook(store, configured_rates(settings.rates)),
            settings.dispatcher,
            settings.fx,
            on_events=self.webhooks.wake,
        )
        self._carriers = bool(settings.connectors)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Bind to the carriers (waiting a moment for them), then start the workers."""
        await start_connectors(self._connectors.values())
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        self._tasks.append(asyncio.create_task(self.webhooks.run(), name="webhooks"))
        if self._carriers:
            self._tasks.append(asyncio.create_task(self._receipts.run(), name="receipts"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        try:
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._tasks.clear()
            # After the dispatcher: a graceful unbind once nothing is being sent.
            await close_connectors(self._connectors.values())

    @property
    def connectors(self) -> Mapping[Channel, Connector]:
        """The connector serving each channel (one instance may serve several)."""
        return self._connectors

    async def _apply_receipts(self, message_ids: Sequence[str]) -> int:
        return await self.dispatcher.apply_receipts(message_ids)

    def wake(self) -> None:
        self.dispatcher.wake()
