"""Where carriers' receipts become statuses: the one place they are reconciled.

A carrier that reports receipts later (SMPP) names the part each is for. Whatever
the order in which a receipt and its hand-over reach the database, it ends here,
and every change it makes is computed by `domain.lifecycle`:

1. **Before a hand-over is written** (:meth:`Reconciler.settle`): receipts that
   came while its parts were being sent (a fast carrier answers before the
   dispatcher writes) are applied in that same write (`on_receipt`).
2. **While it is written**: receipts that came after that look are taken in the
   write's transaction and noted on the message, due now (`on_receipt_heard`, by
   `store.handovers`).
3. **When receipts arrive** (:meth:`Reconciler.receipts`, the connectors'
   `ReceiptSink`): stored before the carrier is answered; those that end a
   hand-over are noted on its message, the others kept until their part is
   written. On PostgreSQL each side looks again after it commits
   (`Receipts.record`, :meth:`Reconciler.handed_over`), so the two can never
   miss each other.
4. **Applied at once** (:meth:`Reconciler.apply`): a noted receipt is applied by
   `on_due` right away, with its price and webhook — not when a dispatcher claims
   the message behind a backlog of sends. Should that fail, the message is due: a
   dispatcher applies it anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from batgate.domain.inbound import InboundText
from batgate.domain.lifecycle import Transition, on_due, on_receipt
from batgate.domain.outcomes import CarrierCost, Handover, JournaledBatch, PartReceipt
from batgate.domain.pricing import RateTable
from batgate.engine.changes import Changes
from batgate.engine.ratebook import RateBook
from batgate.engine.reception import Reception
from batgate.store.manager import Change, Store

log = logging.getLogger(__name__)

APPLY_BATCH = 500


class Reconciler:
    def __init__(
        self,
        store: Store,
        changes: Changes,
        ratebook: RateBook,
        clock: Callable[[], float] = time.time,
        reception: Reception | None = None,
    ) -> None:
        self._store = store
        self.changes = changes
        # Carriers hand their inbound messages here too (engine.reception).
        self.reception = reception or Reception(store, clock=clock)
        self._ratebook = ratebook
        self._clock = clock
        self._ended: list[str] = []
        self._more = asyncio.Event()

    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        """Inbound messages a carrier brought (channels.base.InboundSink)."""
        await self.reception.inbound(connector, messages)

    # -- 1. before a hand-over is written ---------------------------------------------------

    async def settle(self, changes: list[Change], rates: RateTable) -> list[Change]:
        """`changes` with the receipts that came for their hand-overs applied in them."""
        handovers = [c.handover for c in changes if c.handover is not None]
        if not handovers:
            return changes
        try:
            early = await self._store.receipts.early(handovers)
        except Exception:  # only a shortcut: the write takes them anyway (2.)
            log.exception("reading early receipts failed")
            return changes
        now = self._clock()
        settled: list[Change] = []
        for change in changes:
            handover, before = change.handover, change.transition
            after = None
            outcome = early.outcome(handover) if handover is not None else None
            if handover is not None and outcome is not None and before is not None:
                chain, detail = change.record.chain, early.detail(handover)
                after = on_receipt(before.progress, outcome, chain, now, detail=detail)
            if after is None or before is None:
                settled.append(change)
                continue
            both = before.then(after)
            settled.append(self.changes.of(change.record, both, rates, now, handover))
        return settled

    # -- 3. when receipts arrive; and after hand-overs were written -------------------------

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        """Stored when this returns (the connector acknowledges them then); the messages
        whose hand-over they ended are applied right after, by :meth:`run`."""
        self._noted(await self._store.receipts.record(connector, receipts))

    async def handed_over(self, handovers: Sequence[Handover]) -> None:
        """After hand-overs were written: receipts that came for them meanwhile and that
        their write could not see (PostgreSQL), matched now."""
        self._noted(await self._store.receipts.take_early(handovers))

    async def costs(self, connector: str, costs: Sequence[CarrierCost]) -> None:
        """What a carrier charged for steps (store.carrier_costs)."""
        await self._store.carrier_costs.record(connector, costs, self._clock())

    async def awaiting(self, connector: str, handed_before: float, limit: int) -> list[str]:
        """Parts handed to `connector` before then with no receipt yet (for polling)."""
        return await self._store.receipts.awaiting(connector, handed_before, limit)

    async def journal(
        self, connector: str, key: str, body: bytes, members: Sequence[tuple[str, int]]
    ) -> None:
        """A batch for an upstream, kept before it is sent (store.upstream_journal)."""
        await self._store.upstream_journal.write(connector, key, body, members, self._clock())

    async def journaled(
        self, connector: str, members: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], JournaledBatch]:
        """The batch each message was last sent in, for messages taken back."""
        return await self._store.upstream_journal.find(connector, members)

    def _noted(self, message_ids: Sequence[str]) -> None:
        if message_ids:
            self._ended += message_ids
            self._more.set()

    # -- 4. applied at once -------------------------------------------------------------------

    async def run(self) -> None:
        """Apply noted receipts as they come."""
        while True:
            await self._more.wait()
            self._more.clear()
            while self._ended:
                batch, self._ended = self._ended[:APPLY_BATCH], self._ended[APPLY_BATCH:]
                try:
                    await self.apply(batch)
                except Exception:  # noted and due: a dispatcher applies them anyway
                    log.exception("applying %d receipts failed; the dispatcher will", len(batch))

    async def apply(self, message_ids: Sequence[str]) -> int:
        """Apply the receipts noted on these messages now; how many were written.

        Only a message whose noted receipt is due is touched, and only through
        `on_due` — never a send; each write is a compare-and-set, so if a dispatcher
        claimed it meanwhile, one of the two writes the (same) change.
        """
        if not message_ids:
            return 0
        records = await self._store.messages_of(None, message_ids)
        rates = await self._ratebook.table()
        now = self._clock()
        changes = []
        for record in records.values():
            if record.progress.receipt is None:
                continue
            decision = on_due(record.progress, record.chain, now)
            if isinstance(decision, Transition):
                changes.append(self.changes.of(record, decision, rates, now))
        return sum(await self.changes.write(changes))
