"""Carriers' delivery receipts into the store, and the engine's part in matching them.

Connectors that hear receipts later (SMPP) hand them here in batches
(:class:`batgate.channels.base.ReceiptSink`); a batch that ends some hand-overs
wakes the dispatcher, which applies them through the state machine at once.
Early receipts are offered to their parts again four times a second on PostgreSQL
(see :mod:`batgate.store.handovers` for the race this closes), and once a minute
on SQLite, where that race cannot happen, for the purge of old ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from batgate.domain.outcomes import PartReceipt
from batgate.store.handovers import Receipts

log = logging.getLogger(__name__)

REMATCH_EVERY = 0.25  # on PostgreSQL: the most a receipt that raced its hand-over waits
PURGE_EVERY = 60.0  # on SQLite


class StoredReceipts:
    def __init__(self, receipts: Receipts, wake: Callable[[], None]) -> None:
        self._receipts = receipts
        self._wake = wake

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        if await self._receipts.record(connector, receipts):
            self._wake()

    async def run(self) -> None:
        """Re-offer early receipts (and purge old ones), for ever."""
        pause = REMATCH_EVERY if self._receipts.can_miss else PURGE_EVERY
        while True:
            await asyncio.sleep(pause)
            try:
                if await self._receipts.rematch():
                    self._wake()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("matching early receipts failed")
