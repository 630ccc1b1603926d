"""Re-claims: a claim that takes a message whose lease ran out with nothing written.

Such a message may have been handed to its carrier by a worker that died before
writing the result, so it may be handed over again: the claim counts it
(`messages.reclaims`), returns the worker whose lease ran out, and the dispatcher
logs it. A message given back or written back is never counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from integration_support import Clock, new_message

from batgate.channels.base import Outbound
from batgate.channels.simulator import Simulator
from batgate.config import DispatcherSettings, SandboxSettings, Settings
from batgate.domain.lifecycle import on_sent
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt, SendResult
from batgate.domain.pricing import Rate, RateTable
from batgate.domain.records import Account, MessageRecord
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus as CS
from batgate.domain.status import DeliveryStatus as DS
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook, configured_rates
from batgate.store.database import Database
from batgate.store.manager import Change, Store
from databases import Raw

T0 = 1_700_000_000.0
LEASE = 30.0
AFTER = T0 + LEASE + 1  # the first lease has run out
RETRY = RetryPolicy((1.0,), jitter=0.0)
DEFAULTS = Settings.model_construct()


async def insert(store: Store, account: Account, n: int = 1, now: float = T0) -> list[str]:
    _, ids = await store.insert_batch(account, [new_message() for _ in range(n)], now)
    return ids


def reclaims(raw: Raw, message_id: str) -> int:
    return int(raw.scalar("SELECT reclaims FROM messages WHERE id = ?", (message_id,)))


async def status_of(store: Store, message_id: str) -> DS:
    record = await store.get_message(message_id)
    assert record is not None
    return record.progress.status


def claimed_by(raw: Raw, message_id: str) -> str | None:
    value = raw.scalar("SELECT claimed_by FROM messages WHERE id = ?", (message_id,))
    return None if value is None else str(value)


# -- the claim statement ------------------------------------------------------------


async def test_each_claim_after_a_lease_ran_out_counts_once(
    store: Store, account: Account, raw: Raw
) -> None:
    (mid,) = await insert(store, account)
    seen = []
    for n, worker in enumerate(["w1", "w2", "w3"]):
        (record,) = await store.claim_due(worker, T0 + n * (LEASE + 1), LEASE, 10)
        seen.append((record.reclaims, record.previous_claim))
        assert reclaims(raw, mid) == record.reclaims
    assert seen == [(0, None), (1, "w1"), (2, "w2")]


async def _release(store: Store, record: MessageRecord) -> None:
    await store.release(record)


async def _record_hand_over(store: Store, record: MessageRecord) -> None:
    accepted = Accepted("c-1", ScheduledReceipt(CS.DELIVERED, T0 + 2))
    assert await store.apply(
        record, on_sent(record.progress, accepted, record.chain, RETRY, T0), T0
    )


async def _record_retry(store: Store, record: MessageRecord) -> None:
    failed = Failed("busy", retryable=True)
    assert await store.apply(record, on_sent(record.progress, failed, record.chain, RETRY, T0), T0)


async def _die(store: Store, record: MessageRecord) -> None:
    pass


# what the first worker did with its claim -> counted when the message is claimed next
AFTERWARDS: list[tuple[str, Callable[[Store, MessageRecord], Awaitable[None]], int]] = [
    ("gave-it-back", _release, 0),
    ("recorded-a-hand-over", _record_hand_over, 0),
    ("recorded-a-retry", _record_retry, 0),
    ("died", _die, 1),
]


@pytest.mark.parametrize(
    ("then", "counted"), [pytest.param(f, c, id=name) for name, f, c in AFTERWARDS]
)
async def test_only_a_claim_left_behind_counts(
    store: Store,
    account: Account,
    raw: Raw,
    then: Callable[[Store, MessageRecord], Awaitable[None]],
    counted: int,
) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 10)
    await then(store, record)
    assert (claimed_by(raw, mid) is None) == (counted == 0)
    (again,) = await store.claim_due("w2", AFTER, LEASE, 10)
    assert (again.id, again.reclaims, reclaims(raw, mid)) == (mid, counted, counted)
    assert again.previous_claim == ("w1" if counted else None)


async def test_a_late_write_of_the_dead_lease_neither_wins_nor_leaves_a_claim(
    store: Store, account: Account, raw: Raw
) -> None:
    (mid,) = await insert(store, account)
    (slow,) = await store.claim_due("w1", T0, LEASE, 10)
    (taken,) = await store.claim_due("w2", AFTER, LEASE, 10)
    await _record_hand_over(store, taken)
    failed = Failed("busy", retryable=True)
    late = on_sent(slow.progress, failed, slow.chain, RETRY, AFTER)
    assert await store.apply(slow, late, AFTER) is False
    assert claimed_by(raw, mid) is None
    assert (reclaims(raw, mid), await status_of(store, mid)) == (1, DS.PROCESSING)


async def test_one_claim_tells_fresh_messages_from_taken_back_ones(
    store: Store, account: Account, raw: Raw
) -> None:
    ids = [mid for n in range(6) for mid in await insert(store, account, now=T0 + n * 0.001)]
    dead = await store.claim_due("dead", T0 + 0.01, LEASE, 3)  # the three due first
    assert [r.id for r in dead] == ids[:3]
    records = {r.id: r for r in await store.claim_due("w2", AFTER, LEASE, 10)}
    assert sorted(records) == sorted(ids)
    got = [(records[mid].previous_claim, records[mid].reclaims, reclaims(raw, mid)) for mid in ids]
    assert got == [("dead", 1, 1)] * 3 + [(None, 0, 0)] * 3


async def test_two_stores_claiming_at_once_never_share_a_message(
    store: Store, account: Account, raw: Raw, database_url: str
) -> None:
    """Half the messages are a dead worker's (lease run out), half are fresh."""
    left_behind = await insert(store, account, 30)
    assert len(await store.claim_due("dead", T0, LEASE, 100)) == 30
    fresh = await insert(store, account, 30, now=T0 + 1)
    other = Store.connect(database_url)
    claims: list[list[MessageRecord]] = []
    try:
        while True:
            both = await asyncio.gather(
                store.claim_due("w1", AFTER, LEASE, 7), other.claim_due("w2", AFTER, LEASE, 7)
            )
            if not any(both):
                break
            claims += both
    finally:
        await other.close()
    got = [r for batch in claims for r in batch]
    assert len(got) == len({r.id for r in got}) == 60
    assert {r.id for r in got} == set(left_behind) | set(fresh)
    assert {r.id for r in got if r.previous_claim == "dead"} == set(left_behind)
    assert {r.id for r in got if r.previous_claim is None} == set(fresh)
    assert sum(reclaims(raw, mid) for mid in left_behind + fresh) == 30


# -- the dispatcher -------------------------------------------------------------------


@dataclass
class Carrier:
    """The in-process sandbox, noting every hand-over (message id, attempt)."""

    clock: Clock
    handed: list[tuple[str, int]] = field(default_factory=list)

    async def send(self, message: Outbound) -> SendResult:
        self.handed.append((message.message_id, message.attempt))
        return await Simulator(SandboxSettings(), clock=self.clock).send(message)


class Unpriceable(RateTable):
    """A rate table that fails every look-up (a bug after the hand-over, say)."""

    def lookup(self, channel: str, to: str) -> Rate | None:
        raise LookupError("no rates today")


class Rates(RateBook):
    def __init__(self, store: Store) -> None:
        super().__init__(store, configured_rates(DEFAULTS.rates))
        self.broken = False

    async def table(self) -> RateTable:
        return Unpriceable([]) if self.broken else await super().table()


def dispatcher(
    store: Store, clock: Clock, carrier: Carrier, rates: RateBook | None = None, **settings: Any
) -> Dispatcher:
    return Dispatcher(
        store,
        {channel: carrier for channel in Channel},
        rates or RateBook(store, configured_rates(DEFAULTS.rates)),
        DispatcherSettings(**{"lease_seconds": LEASE, **settings}),
        DEFAULTS.fx,
        clock=clock,
    )


async def test_the_dispatcher_logs_and_counts_each_reclaim(
    store: Store, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await insert(store, account, 3)
    fresh = await insert(store, account, 2)
    await store.claim_due("dead-worker", T0, LEASE, 3)
    clock = Clock(AFTER)
    carrier = Carrier(clock)
    d = dispatcher(store, clock, carrier)
    with caplog.at_level(logging.WARNING, logger="batgate.engine.dispatcher"):
        assert await d.tick() == 5
    assert d.reclaimed == 3
    warned = [r.getMessage() for r in caplog.records if "claimed again" in r.getMessage()]
    assert len(warned) == 3
    for mid in ids:
        (line,) = [w for w in warned if mid in w]
        assert "dead-worker" in line and "re-claim 1" in line
    assert sorted(carrier.handed) == sorted((mid, 1) for mid in ids + fresh)


async def test_a_failed_plan_keeps_its_claim_and_its_next_claim_counts(
    store: Store, account: Account, raw: Raw
) -> None:
    """Handed over, then the bookkeeping failed: no hot loop; after the lease a re-send,
    matched by a re-claim."""
    (mid,) = await insert(store, account)
    clock = Clock(T0)
    carrier = Carrier(clock)
    rates = Rates(store)
    rates.broken = True
    d = dispatcher(store, clock, carrier, rates)
    assert await d.tick() == 1
    assert carrier.handed == [(mid, 1)]
    assert claimed_by(raw, mid) == d.worker  # kept: not due again at once
    clock.advance(LEASE / 2)
    assert await d.tick() == 0
    rates.broken = False
    clock.now = AFTER
    assert await d.tick() == 1
    assert carrier.handed == [(mid, 1), (mid, 1)]  # the same hand-over again
    assert (d.reclaimed, reclaims(raw, mid), claimed_by(raw, mid)) == (1, 1, None)
    assert await status_of(store, mid) is DS.PROCESSING


class Hiccups(Store):
    """The real store, whose next `failures` batch writes fail (a dropped connection)."""

    failures = 0

    async def apply_all(self, changes: Sequence[Change], now: float) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("database connection lost")
        return await super().apply_all(changes, now)


async def test_results_are_written_before_anything_more_is_claimed(
    account: Account, database_url: str, raw: Raw
) -> None:
    hiccups = Hiccups(Database.connect(database_url))
    try:
        ids = await insert(hiccups, account, 4)
        clock = Clock(T0)
        carrier = Carrier(clock)
        hiccups.failures = 2
        d = dispatcher(hiccups, clock, carrier, batch_size=2)
        assert await d.tick() == 2  # written on the third try, within the tick
        assert [claimed_by(raw, mid) for mid in ids] == [None] * 4
        statuses = [await status_of(hiccups, mid) for mid in ids]
        assert statuses.count(DS.PROCESSING) == 2
        assert len(carrier.handed) == 2
    finally:
        await hiccups.close()


async def test_a_write_that_keeps_failing_gives_up_when_the_lease_runs_out(
    account: Account, database_url: str, raw: Raw
) -> None:
    hiccups = Hiccups(Database.connect(database_url))
    try:
        (mid,) = await insert(hiccups, account)
        clock = Clock(T0)
        hiccups.failures = 10**6
        d = dispatcher(hiccups, clock, Carrier(clock), lease_seconds=0.3)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(d.tick(), 5)
        assert claimed_by(raw, mid) == d.worker  # left for the lease to hand back
    finally:
        await hiccups.close()


async def test_a_message_whose_processing_keeps_failing_ends_permanenterror(
    store: Store, account: Account, raw: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    """Handling it raises every time (here: its price cannot be looked up): claimed
    again after each lease, and after `max_reclaims` of those it ends permanenterror,
    with the reason in its story, logged and counted — never claimed for ever."""
    from batgate.observability import metrics

    (mid,) = await insert(store, account)
    clock = Clock(T0)
    rates = Rates(store)
    rates.broken = True
    d = dispatcher(store, clock, Carrier(clock), rates, max_reclaims=2)
    abandoned = metrics.MESSAGES_ABANDONED._value.get()
    with caplog.at_level(logging.ERROR, logger="batgate.engine.dispatcher"):
        for n in range(4):  # the first claim, two re-claims that fail, the third ends it
            clock.now = T0 + n * (LEASE + 1)
            assert await d.tick() == 1
    assert reclaims(raw, mid) == 3
    record = await store.get_message(mid)
    assert record is not None and record.progress.status is DS.PERMANENTERROR
    (final,) = [line for line in await store.story(mid) if line.status == "permanenterror"]
    assert final.reason is not None and "claimed again 3 times" in final.reason
    assert metrics.MESSAGES_ABANDONED._value.get() == abandoned + 1
    assert any(f"message {mid} ends permanenterror" in r.getMessage() for r in caplog.records)
    clock.now += LEASE + 1
    assert await d.tick() == 0  # final: never claimed again
