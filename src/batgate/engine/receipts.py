"""Carriers' delivery receipts into the store, and the engine's part in matching them.

Connectors that hear receipts later (SMPP) hand them here in batches
(:class:`batgate.channels.base.ReceiptSink`). Each batch is stored (and the
messages whose hand-over it ended announced, due now) before the connector
acknowledges it; then those messages are applied through the state machine at
once, rather than when a dispatcher claims them (behind any backlog of sends).
Early receipts are offered to their parts again four times a second on PostgreSQL
(see :mod:`batgate.store.handovers` for the race this closes), and once a minute
on SQLite, where that race cannot happen, for the purge of old ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from batgate.domain.outcomes import PartReceipt
from batgate.store.handovers import Receipts

log = logging.getLogger(__name__)

REMATCH_EVERY = 0.25  # on PostgreSQL: the most a receipt that raced its hand-over waits
PURGE_EVERY = 60.0  # on SQLite
APPLY_BATCH = 500


class StoredReceipts:
    def __init__(
        self, receipts: Receipts, apply: Callable[[Sequence[str]], Awaitable[int]]
    ) -> None:
        self._receipts = receipts
        self._apply = apply
        self._ended: list[str] = []
        self._more = asyncio.Event()

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        """Stored when this returns (the connector acknowledges them then); the messages
        they ended are applied right after, by :meth:`run`."""
        self._ended_now(await self._receipts.record(connector, receipts))

    def _ended_now(self, message_ids: Sequence[str]) -> None:
        if message_ids:
            self._ended += message_ids
            self._more.set()

    async def run(self) -> None:
        """Apply ended hand-overs as they come; re-offer early receipts (and purge)."""
        await asyncio.gather(self._apply_ended(), self._rematch())

    async def _apply_ended(self) -> None:
        while True:
            await self._more.wait()
            self._more.clear()
            while self._ended:
                batch, self._ended = self._ended[:APPLY_BATCH], self._ended[APPLY_BATCH:]
                try:
                    await self._apply(batch)
                except Exception:  # announced and due: a dispatcher applies them anyway
                    log.exception("applying %d receipts failed; the dispatcher will", len(batch))

    async def _rematch(self) -> None:
        pause = REMATCH_EVERY if self._receipts.can_miss else PURGE_EVERY
        while True:
            await asyncio.sleep(pause)
            try:
                self._ended_now(await self._receipts.rematch())
            except Exception:  # a database hiccup: the next round tries again
                log.exception("matching early receipts failed")
