"""The dispatcher: claims due messages, hands them to channels, applies what follows.

One loop does all the time-driven work of a message — the first send, retries,
the next fallback step, announced receipts, TTL expiry — because each of these is
just "the message is due": the store's `due_at` says when, the state machine in
:mod:`batgate.domain.lifecycle` says what. Claims carry a lease, so messages a
crashed process had claimed come back once the lease runs out.

Crash safety: one tick at a time, and a tick's results are written before the
next claim, so a worker never has more than `batch_size` messages handed to a
carrier without a record. Only those can be handed over again after a crash;
each such claim is counted by the store (`reclaims`) and logged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from batgate.channels.base import Connector, Outbound
from batgate.config import DispatcherSettings
from batgate.domain.lifecycle import Transition, on_due, on_receipt, on_sent
from batgate.domain.messages import Channel
from batgate.domain.notifications import Notification, webhook_payload
from batgate.domain.outcomes import Accepted, Failed, SendResult
from batgate.domain.pricing import RateTable, charge
from batgate.domain.records import MessageRecord
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import DeliveryStatus
from batgate.engine.ratebook import RateBook
from batgate.observability import metrics
from batgate.store.manager import Change, Priced, Store

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        connectors: Mapping[Channel, Connector],
        ratebook: RateBook,
        settings: DispatcherSettings,
        fx: Mapping[str, float],
        on_events: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._on_events = on_events
        self._connectors = connectors
        self._ratebook = ratebook
        self._settings = settings
        self._fx = fx
        self._clock = clock
        self._retry = RetryPolicy(tuple(settings.retry_delays), jitter=0.2)
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.worker = worker_name()
        # Messages this dispatcher claimed after another claim's lease ran out.
        self.reclaimed = 0

    def wake(self) -> None:
        """New work was stored by this process: look now rather than at the next poll."""
        self._wakeup.set()

    def request_stop(self) -> None:
        """Claim nothing more: `run` returns once the tick in hand is written."""
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            try:
                handled = await self.tick()
            except Exception:  # keep the engine alive through a database hiccup
                log.exception("dispatcher tick failed")
                handled = 0
            if self._stopping:
                break
            if handled < self._settings.batch_size:
                await self._idle()
            elif self._store.taking_sends:
                # A backlog, while this process's API takes messages: it gets at least
                # as much time as the engine, so that sending stays quick under load.
                await asyncio.sleep(min(time.monotonic() - started, 0.5))

    async def _idle(self) -> None:
        self._wakeup.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
        # that meets the wake-up (Engine.stop right after a wake()), and the loop
        # would go on for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.poll_interval):
                await self._wakeup.wait()

    async def tick(self) -> int:
        """Claim one batch of due messages, handle each, write all results at once."""
        now = self._clock()
        if not await self._store.anything_due(now):
            return 0
        lease_ends = time.monotonic() + self._settings.lease_seconds
        records = await self._store.claim_due(
            self.worker, now, self._settings.lease_seconds, self._settings.batch_size
        )
        if not records:
            return 0
        _count_claims(records, now)
        self._note_reclaims(records)
        rates = await self._ratebook.table()
        planned = await asyncio.gather(*(self._plan_safely(r, rates) for r in records))
        changes = await self._settle_early([c for c in planned if c is not None], rates)
        applied = await self._record(changes, lease_ends)
        _count_applied(changes, applied, self._clock())
        if any(ok and c.notifications for ok, c in zip(applied, changes, strict=True)):
            self._on_events()
        return len(records)

    def _note_reclaims(self, records: list[MessageRecord]) -> None:
        for record in records:
            if record.previous_claim is not None:
                self.reclaimed += 1
                log.warning(
                    "message %s claimed again after the lease of %s ran out (re-claim %d): "
                    "a hand-over to its carrier may be repeated",
                    record.id,
                    record.previous_claim,
                    record.reclaims,
                )

    async def _record(self, changes: list[Change], lease_ends: float) -> list[bool]:
        """Write a tick's results, trying again while its lease lasts.

        Nothing new is claimed meanwhile, so hand-overs without a record stay within
        one batch; once the lease has run out the messages are others' to re-claim.
        A retry is safe: each write is a compare-and-set on the version it read.
        """
        pause = 0.05
        while True:
            try:
                return await self._store.apply_all(changes, self._clock())
            except Exception:
                if time.monotonic() + pause >= lease_ends:
                    raise
                log.exception("writing %d results failed; trying again", len(changes))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def _plan_safely(self, record: MessageRecord, rates: RateTable) -> Change | None:
        try:
            return await self._plan(record, rates)
        except Exception:
            # One message's trouble must not hold back the batch. It keeps its claim,
            # so it waits for the lease to run out rather than coming straight back
            # (it may have been handed over already); that next claim counts as a
            # re-claim, an upper bound of the re-sends.
            log.exception("handling message %s failed", record.id)
            return None

    async def _plan(self, record: MessageRecord, rates: RateTable) -> Change:
        """What to write for one claimed message (sending it first, when that is due)."""
        decision = on_due(record.progress, record.chain, self._clock())
        if decision is None:
            return Change(record, None)
        handover = None
        if isinstance(decision, Transition):
            transition = decision
        else:
            result = await self._send(record)
            transition = on_sent(record.progress, result, record.chain, self._retry, self._clock())
            if isinstance(result, Accepted):
                handover = result.handover
        priced = self._price(record, transition, rates)
        notifications = self._notifications(record, transition, priced, self._clock())
        return Change(record, transition, priced, tuple(notifications), handover)

    async def apply_receipts(self, message_ids: Sequence[str]) -> int:
        """Apply the receipts just announced on these messages, without waiting for them
        to be claimed; how many were written.

        A backlog of sends ahead of them in the claim order would otherwise hold back
        their final status. Only a message whose announced receipt is due is
        touched, and only through the state machine's `on_receipt` — never a send;
        each write is a compare-and-set, so if a dispatcher claimed it meanwhile,
        one of the two writes the (same) change and the other's is skipped.
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
                priced = self._price(record, decision, rates)
                notifications = self._notifications(record, decision, priced, now)
                changes.append(Change(record, decision, priced, tuple(notifications)))
        if not changes:
            return 0
        applied = await self._store.apply_all(changes, now)
        _count_applied(changes, applied, self._clock())
        if any(ok and c.notifications for ok, c in zip(applied, changes, strict=True)):
            self._on_events()
        return sum(applied)

    async def _settle_early(self, changes: list[Change], rates: RateTable) -> list[Change]:
        """Apply receipts that came while their parts were being handed over.

        A fast carrier's receipt often arrives before this tick has written the
        hand-over; it waits as an early receipt (batgate.store.handovers). Reading
        those now lets the message go to its final status in this very write,
        instead of one more claim and write later. A receipt that comes after this
        look is taken in the write's transaction and applied by the next tick.
        """
        handovers = [c.handover for c in changes if c.handover is not None]
        if not handovers:
            return changes
        try:
            early = await self._store.receipts.early(handovers)
        except Exception:  # only a shortcut: the write takes them anyway
            log.exception("reading early receipts failed")
            return changes
        now = self._clock()
        settled: list[Change] = []
        for change in changes:
            handover, before = change.handover, change.transition
            outcome = early.outcome(handover) if handover is not None else None
            after = None
            if outcome is not None and before is not None:
                after = on_receipt(before.progress, outcome, change.record.chain, now)
            if after is None or before is None:
                settled.append(change)
                continue
            both = Transition(after.progress, before.entered + after.entered)
            priced = self._price(change.record, both, rates)
            notifications = self._notifications(change.record, both, priced, now)
            settled.append(Change(change.record, both, priced, tuple(notifications), handover))
        return settled

    def _notifications(
        self, record: MessageRecord, t: Transition, priced: Priced, now: float
    ) -> list[Notification]:
        """One event per status entered, with its webhook payload.

        Whether it is sent is decided by the store in the same transaction, from
        the account's webhook URL at that moment (or the message's callbackUrl).
        """
        return [
            Notification(
                status,
                webhook_payload(record, t.progress, status, now, priced.bill_micros),
                record.callback_url,
            )
            for status in t.entered
        ]

    async def _send(self, record: MessageRecord) -> SendResult:
        step = record.current
        outbound = Outbound(record.id, step, record.progress.attempts + 1)
        async with self._limit:
            try:
                result = await self._connectors[step.channel].send(outbound)
            except Exception as exc:  # a connector bug or network error: retry later
                log.warning("connector %s failed for %s: %r", step.channel, record.id, exc)
                result = Failed(f"connector error: {exc!r}", retryable=True)
        metrics.channel_sends(step.channel.value, _send_label(result)).inc()
        return result

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


def _send_label(result: SendResult) -> str:
    if isinstance(result, Failed):
        if result.retry_after is not None:
            return "unavailable"
        return "failed" if result.retryable else "rejected"
    return "accepted"


def _count_claims(records: Sequence[MessageRecord], claimed_at: float) -> None:
    for record in records:
        due = record.progress.due_at
        if due is not None:
            metrics.DISPATCHER_LAG.observe(max(0.0, claimed_at - due))


def _count_applied(changes: Sequence[Change], applied: Sequence[bool], written_at: float) -> None:
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
            # Claimed only once due, so an announced receipt is what was applied.
            metrics.RECEIPT_LAG.observe(max(0.0, written_at - before.due_at))
