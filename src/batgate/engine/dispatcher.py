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
from batgate.domain.lifecycle import Transition, on_due, on_sent, on_stuck
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted
from batgate.domain.pricing import RateTable
from batgate.domain.records import MessageRecord
from batgate.domain.retry import RetryPolicy
from batgate.engine.changes import Changes
from batgate.engine.ratebook import RateBook
from batgate.engine.receipts import Reconciler
from batgate.engine.switchboard import Sent, Switchboard, send_label
from batgate.observability import metrics
from batgate.store.manager import Change, Store

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        connectors: Mapping[Channel, Connector] | Switchboard,
        ratebook: RateBook,
        settings: DispatcherSettings,
        fx: Mapping[str, float],
        on_events: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        reconciler: Reconciler | None = None,
    ) -> None:
        self._store = store
        # Where hand-overs go: the routes, or (tests) one connector per channel.
        self._switchboard = (
            connectors
            if isinstance(connectors, Switchboard)
            else Switchboard.per_channel(connectors)
        )
        self._usernames: dict[int, str] = {}  # for routes that match accounts
        self._ratebook = ratebook
        self._settings = settings
        self._clock = clock
        # The engine shares its reconciler with the carriers' connectors (their receipts).
        self.reconciler = reconciler or Reconciler(
            store, Changes(store, fx, on_events, clock), ratebook, clock
        )
        self._changes = self.reconciler.changes
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
        if self._switchboard.uses_accounts:
            await self._know_usernames(records)
        rates = await self._ratebook.table()
        planned = await asyncio.gather(*(self._plan_safely(r, rates) for r in records))
        changes = await self.reconciler.settle([c for c in planned if c is not None], rates)
        applied = await self._record(changes, lease_ends)
        written = [c.handover for c, ok in zip(changes, applied, strict=True) if ok]
        await self.reconciler.handed_over([h for h in written if h is not None])
        return len(records)

    async def _know_usernames(self, records: list[MessageRecord]) -> None:
        unknown = {r.account_id for r in records} - self._usernames.keys()
        if unknown:
            accounts = await self._store.accounts_by_ids(unknown)
            self._usernames.update({i: a.username for i, a in accounts.items()})

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
                return await self._changes.write(changes)
            except Exception:
                if time.monotonic() + pause >= lease_ends:
                    raise
                log.exception("writing %d results failed; trying again", len(changes))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def _plan_safely(self, record: MessageRecord, rates: RateTable) -> Change | None:
        if record.reclaims > self._settings.max_reclaims:
            stuck = on_stuck(record.progress, record.chain, record.reclaims, self._clock())
            if stuck is not None:
                metrics.MESSAGES_ABANDONED.inc()
                log.error(
                    "message %s ends permanenterror: claimed again %d times after its lease "
                    "ran out (more than dispatcher.max_reclaims = %d); the tracebacks of its "
                    "failures are logged above",
                    record.id,
                    record.reclaims,
                    self._settings.max_reclaims,
                )
                return self._changes.of(record, stuck, rates, self._clock())
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
            sent = await self._send(record)
            result = sent.result
            # Where it went is worth a line of its story when there was a choice.
            route = sent.note() if self._switchboard.routed or sent.passed else None
            now = self._clock()
            transition = on_sent(
                record.progress, result, record.chain, self._retry, now, route, sent.connector
            )
            if isinstance(result, Accepted):
                handover = result.handover
        return self._changes.of(record, transition, rates, self._clock(), handover)

    async def _send(self, record: MessageRecord) -> Sent:
        step = record.current
        resumed = record.previous_claim is not None
        outbound = Outbound(
            record.id, step, record.progress.attempts + 1, record.progress.step, resumed
        )
        account = self._usernames.get(record.account_id)
        async with self._limit:
            sent = await self._switchboard.send(outbound, record.progress.step, account)
        metrics.channel_sends(step.channel.value, send_label(sent.result)).inc()
        return sent


def _count_claims(records: Sequence[MessageRecord], claimed_at: float) -> None:
    for record in records:
        due = record.progress.due_at
        if due is not None:
            metrics.DISPATCHER_LAG.observe(max(0.0, claimed_at - due))
