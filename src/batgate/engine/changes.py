"""From a transition to the write: its price, its events and webhooks, and the write.

The dispatcher (sends, retries, TTLs) and the reconciler (carriers' receipts) both
turn a message's `domain.lifecycle.Transition` into a `store.Change` here, and
write batches of them here, so a change means the same whoever made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from batgate.domain.lifecycle import Transition
from batgate.domain.notifications import Notification, webhook_payload
from batgate.domain.outcomes import Handover
from batgate.domain.pricing import RateTable, charge
from batgate.domain.records import MessageRecord
from batgate.domain.status import DeliveryStatus
from batgate.observability import metrics
from batgate.store.manager import Change, Priced, Store


class Changes:
    def __init__(
        self,
        store: Store,
        fx: Mapping[str, float],
        on_events: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._fx = fx
        self._on_events = on_events
        self._clock = clock

    def of(
        self,
        record: MessageRecord,
        transition: Transition,
        rates: RateTable,
        now: float,
        handover: Handover | None = None,
    ) -> Change:
        """The write of `transition`: the rate and bill, one event per status entered."""
        try:
            priced = self._price(record, transition, rates)
        except Exception:
            if not transition.progress.status.is_final:
                raise
            # A message ending is written even when it cannot be priced (a broken rate
            # table): at its locked-in rate, billed nothing.
            priced = Priced(record.rate_micros, record.rate_currency, 0)
        notifications = tuple(
            Notification(
                status,
                webhook_payload(record, transition.progress, status, now, priced.bill_micros),
                record.callback_url,
            )
            for status in transition.entered
        )
        return Change(record, transition, priced, notifications, handover)

    async def write(self, changes: Sequence[Change]) -> list[bool]:
        """Write them in one transaction (each a compare-and-set); which were written.
        Counts the statuses entered, and wakes the webhook sender for new events."""
        if not changes:
            return []
        applied = await self._store.apply_all(changes, self._clock())
        count_applied(changes, applied, self._clock())
        if any(ok and c.notifications for ok, c in zip(applied, changes, strict=True)):
            self._on_events()
        return applied

    def _price(self, record: MessageRecord, t: Transition, rates: RateTable) -> Priced:
        """The rate of the channel in use (or that carried it) and, once final, the bill."""
        step = record.chain[t.progress.step]
        rate = rates.lookup(step.channel.value, step.to)
        if rate is None:
            return Priced(None, None, None if not t.progress.status.is_final else 0)
        if not t.progress.status.is_final:
            return Priced(rate.micros, rate.currency, None)
        delivered = t.progress.status is DeliveryStatus.DELIVERED
        bill = charge(
            rate.micros, rate.currency, step.parts, record.bill_currency, delivered, self._fx
        )
        return Priced(rate.micros, rate.currency, bill.bill_amount)


def count_applied(changes: Sequence[Change], applied: Sequence[bool], written_at: float) -> None:
    """Count the statuses entered by the changes that were written, and receipt lag."""
    for ok, change in zip(applied, changes, strict=True):
        transition = change.transition
        if not ok or transition is None:
            continue
        before = change.record.progress
        for status in transition.entered:
            # `processing` is entered on the step handed over; a final status on the
            # step the chain ended on.
            step = before.step if status is DeliveryStatus.PROCESSING else transition.progress.step
            metrics.message_statuses(status.value, change.record.chain[step].channel.value).inc()
        if before.receipt is not None and before.due_at is not None:
            # Claimed only once due, so a noted receipt is what was applied.
            metrics.RECEIPT_LAG.observe(max(0.0, written_at - before.due_at))
