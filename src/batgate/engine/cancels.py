"""Cancelling a scheduled message (`DELETE /bat/message/{id}`, SPEC §12).

The message is claimed first (store.cancellation: no dispatcher can take it while
the cancel holds it), then ended by the one state machine (`on_cancel`) and written
like any other change: `permanenterror`, cost 0, its webhook event in the outbox,
"cancelled by the account" in its story.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from batgate.domain.lifecycle import on_cancel
from batgate.engine.changes import Changes
from batgate.engine.ratebook import RateBook
from batgate.store.cancellation import Refusal
from batgate.store.manager import Store

_LEASE = 30.0  # seconds the cancel holds its claim: far longer than its one write


@dataclass(frozen=True, slots=True)
class Cancelled:
    message_id: str


class Cancels:
    def __init__(
        self,
        store: Store,
        changes: Changes,
        ratebook: RateBook,
        worker: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._changes = changes
        self._ratebook = ratebook
        self._worker = f"cancel:{worker}"
        self._clock = clock

    async def cancel(self, account_id: int, message_id: str) -> Cancelled | Refusal:
        now = self._clock()
        claimed = await self._store.cancellation.claim(
            account_id, message_id, self._worker, now, _LEASE
        )
        if isinstance(claimed, Refusal):
            return claimed
        transition = on_cancel(claimed.progress, now)
        if transition is None:  # not scheduled after all: give the claim back
            await self._store.release(claimed)
            return Refusal.PAST_SCHEDULED
        change = self._changes.of(claimed, transition, await self._ratebook.table(), now)
        (written,) = await self._changes.write([change])
        if not written:  # moved on between the claim and the write (it cannot, held)
            return Refusal.PAST_SCHEDULED
        return Cancelled(message_id)
