"""The dispatcher with the real store (SQLite), the real sandbox carrier and a rate book.

Time is a hand-moved clock shared by the dispatcher and the simulator, so the
SPEC §7 timings (seconds to minutes) run in a few hundred ticks and no test waits.
Only the carrier is wrapped (to count sends); the store is never replaced.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest
from integration_support import Clock, make_account, new_message

from batgate.channels.base import Connector, Outbound
from batgate.channels.simulator import Simulator
from batgate.config import DispatcherSettings, Settings
from batgate.domain.documents import status_view
from batgate.domain.messages import Channel, MessageType, NewMessage
from batgate.domain.outcomes import SendResult
from batgate.domain.pricing import Rate
from batgate.domain.records import Account, MessageRecord
from batgate.domain.status import ChannelStatus as CS
from batgate.domain.status import DeliveryStatus as DS
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook, configured_rates
from batgate.store.manager import Store
from databases import raw_connection

T0 = 1_700_000_000.0
TICK = 0.25
SMS, VIBER, RCS, FLASH = (
    MessageType.SMS,
    MessageType.VIBER_PROMO,
    MessageType.RCS,
    MessageType.FLASHCALL,
)
SETTINGS = Settings.model_construct()  # the defaults (no environment): sandbox, rates, fx
RATE = {"sms": 50_000, "viber": 30_000, "rcs": 40_000, "flashcall": 20_000}  # the default rates
SEND_ATTEMPTS = len(SETTINGS.dispatcher.retry_delays) + 1


@dataclass
class Recording:
    """The sandbox carrier, counting what is handed to it (and by which dispatcher)."""

    inner: Connector
    label: str
    log: list[tuple[str, str, Channel, int]] = field(default_factory=list)

    async def send(self, message: Outbound) -> SendResult:
        self.log.append((self.label, message.message_id, message.step.channel, message.attempt))
        await asyncio.sleep(0)  # let another dispatcher run in between
        return await self.inner.send(message)


@dataclass
class Rig:
    store: Store
    clock: Clock
    database_url: str
    log: list[tuple[str, str, Channel, int]] = field(default_factory=list)
    dispatchers: list[Dispatcher] = field(default_factory=list)

    def dispatcher(
        self,
        store: Store | None = None,
        label: str = "d1",
        settings: DispatcherSettings | None = None,
        connector: Connector | None = None,
    ) -> Dispatcher:
        sim = Simulator(SETTINGS.sandbox, clock=self.clock, rng=random.Random(len(self.log)))
        recording = Recording(connector or sim, label, self.log)
        target = store or self.store
        d = Dispatcher(
            target,
            {channel: recording for channel in Channel},
            RateBook(target, configured_rates(SETTINGS.rates)),
            settings or SETTINGS.dispatcher,
            SETTINGS.fx,
            clock=self.clock,
        )
        self.dispatchers.append(d)
        return d

    def open_messages(self) -> tuple[int, float | None]:
        """How many messages are not final yet, and the earliest time one is due."""
        with raw_connection(self.database_url) as conn:
            n, due = conn.execute(
                "SELECT count(*), min(due_at) FROM messages WHERE due_at IS NOT NULL"
            ).fetchone()
        return int(n), due

    async def run(self, until: float, stop_when_settled: bool = True) -> None:
        """Tick every dispatcher (together) until `until`, moving the clock by at least
        TICK, or straight to the next due time when nothing is due before it."""
        while self.clock.now <= until:
            await asyncio.gather(*(d.tick() for d in self.dispatchers))
            open_, due = self.open_messages()
            if stop_when_settled and open_ == 0:
                return
            step = self.clock.now + TICK
            self.clock.now = step if due is None else max(step, min(due, until + TICK))

    def sends(self, message_id: str) -> Counter[Channel]:
        return Counter(channel for _, mid, channel, _ in self.log if mid == message_id)


@pytest.fixture
def rig(store: Store, database_url: str) -> Rig:
    return Rig(store, Clock(T0), database_url)


async def insert(rig: Rig, account: Account, batch: Sequence[NewMessage]) -> list[str]:
    _, ids = await rig.store.insert_batch(account, list(batch), rig.clock.now)
    return ids


async def record_of(store: Store, message_id: str) -> MessageRecord:
    record = await store.get_message(message_id)
    assert record is not None
    return record


@dataclass(frozen=True)
class Case:
    ending: str
    chain: tuple[MessageType, ...]
    status: DS
    steps: tuple[CS, ...]
    events: tuple[DS, ...]
    sends: dict[Channel, int]
    rate_on: str
    ttl: int = 86_400
    parts: int = 1


def one_each(*channels: Channel) -> dict[Channel, int]:
    return dict.fromkeys(channels, 1)


P, D, U, E = DS.PROCESSING, DS.DELIVERED, DS.UNDELIVERABLE, DS.PERMANENTERROR
RETRIES = SEND_ATTEMPTS

CASES: dict[str, Case] = {
    "plain-sms": Case("4567", (SMS,), D, (CS.DELIVERED,), (P, D), one_each(Channel.SMS), "sms"),
    "plain-sms-3-parts": Case(
        "4567", (SMS,), D, (CS.DELIVERED,), (P, D), one_each(Channel.SMS), "sms", parts=3
    ),
    "plain-viber": Case(
        "4567", (VIBER,), D, (CS.DELIVERED,), (P, D), one_each(Channel.VIBER), "viber"
    ),
    "0001-sms": Case("0001", (SMS,), U, (CS.UNDELIVERABLE,), (P, U), one_each(Channel.SMS), "sms"),
    "0001-flashcall": Case(
        "0001", (FLASH,), U, (CS.UNDELIVERABLE,), (P, U), one_each(Channel.FLASHCALL), "flashcall"
    ),
    "0002-sms": Case("0002", (SMS,), E, (CS.PERMANENTERROR,), (E,), {Channel.SMS: RETRIES}, "sms"),
    "0003-sms": Case("0003", (SMS,), D, (CS.DELIVERED,), (P, D), one_each(Channel.SMS), "sms"),
    "0003-viber": Case(
        "0003", (VIBER,), U, (CS.UNDELIVERABLE,), (P, U), one_each(Channel.VIBER), "viber"
    ),
    "0003-rcs": Case("0003", (RCS,), U, (CS.UNDELIVERABLE,), (P, U), one_each(Channel.RCS), "rcs"),
    "0003-flashcall": Case(
        "0003", (FLASH,), U, (CS.UNDELIVERABLE,), (P, U), one_each(Channel.FLASHCALL), "flashcall"
    ),
    "0004-sms": Case("0004", (SMS,), D, (CS.DELIVERED,), (P, D), one_each(Channel.SMS), "sms"),
    "0005-sms": Case(
        "0005", (SMS,), U, (CS.UNDELIVERABLE,), (P, U), one_each(Channel.SMS), "sms", ttl=40
    ),
    "4567-viber>sms": Case(
        "4567",
        (VIBER, SMS),
        D,
        (CS.DELIVERED, CS.NOT_USED),
        (P, D),
        one_each(Channel.VIBER),
        "viber",
        parts=2,
    ),
    "0003-viber>sms": Case(
        "0003",
        (VIBER, SMS),
        D,
        (CS.UNDELIVERABLE, CS.DELIVERED),
        (P, D),
        one_each(Channel.VIBER, Channel.SMS),
        "sms",
        parts=2,
    ),
    "0003-viber>rcs>sms": Case(
        "0003",
        (VIBER, RCS, SMS),
        D,
        (CS.UNDELIVERABLE, CS.UNDELIVERABLE, CS.DELIVERED),
        (P, D),
        one_each(Channel.VIBER, Channel.RCS, Channel.SMS),
        "sms",
    ),
    "0001-viber>sms": Case(
        "0001",
        (VIBER, SMS),
        U,
        (CS.UNDELIVERABLE, CS.UNDELIVERABLE),
        (P, U),
        one_each(Channel.VIBER, Channel.SMS),
        "sms",
    ),
    "0002-viber>sms": Case(
        "0002",
        (VIBER, SMS),
        E,
        (CS.PERMANENTERROR, CS.PERMANENTERROR),
        (E,),
        {Channel.VIBER: RETRIES, Channel.SMS: RETRIES},
        "sms",
    ),
    "0005-viber>sms": Case(
        "0005",
        (VIBER, SMS),
        U,
        (CS.UNDELIVERABLE, CS.UNDELIVERABLE),
        (P, U),
        one_each(Channel.VIBER, Channel.SMS),
        "sms",
        ttl=40,
    ),
}


def to(ending: str) -> str:
    return "+38050123" + ending


@pytest.mark.parametrize("name", list(CASES))
async def test_sandbox_outcomes(rig: Rig, account: Account, name: str) -> None:
    case = CASES[name]
    message = new_message(to(case.ending), *case.chain, ttl=case.ttl, parts=case.parts)
    (mid,) = await insert(rig, account, [message])
    rig.dispatcher()
    await rig.run(until=T0 + 300)

    record = await record_of(rig.store, mid)
    assert record.progress.status is case.status
    assert record.progress.steps == case.steps
    assert record.progress.due_at is None
    events = await rig.store.events_of(mid)
    assert tuple(status for status, _ in events) == case.events
    assert [at for _, at in events] == sorted(at for _, at in events)
    assert rig.sends(mid) == Counter(case.sends)
    # Attempts on one channel are numbered 1, 2, ... and none is repeated.
    for channel, times in case.sends.items():
        attempts = [a for _, m, c, a in rig.log if m == mid and c is channel]
        assert attempts == list(range(1, times + 1))

    parts = record.chain[record.progress.step].parts
    assert (record.rate_micros, record.rate_currency) == (RATE[case.rate_on], "USD")
    billed = RATE[case.rate_on] * parts if case.status is D else 0
    assert record.bill_micros == billed
    view = status_view(record)
    assert view["cost"] == billed / 1_000_000
    assert view["deliverystatus"] == case.status.value


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.ending not in ("0004", "0005")])
async def test_sandbox_timing(rig: Rig, account: Account, name: str) -> None:
    """SPEC §7 with the default settings: processing within a second, final within 15 s."""
    case = CASES[name]
    (mid,) = await insert(rig, account, [new_message(to(case.ending), *case.chain)])
    rig.dispatcher()
    await rig.run(until=T0 + 300)
    events = await rig.store.events_of(mid)
    if events[0][0] is P:
        assert events[0][1] <= T0 + 1
    assert events[-1][0].is_final
    assert events[-1][1] <= T0 + 15


async def test_slow_0004_stays_processing_about_20_seconds(rig: Rig, account: Account) -> None:
    (mid,) = await insert(rig, account, [new_message(to("0004"))])
    rig.dispatcher()
    await rig.run(until=T0 + 19.5)
    assert (await record_of(rig.store, mid)).progress.status is P
    await rig.run(until=T0 + 60)
    events = await rig.store.events_of(mid)
    assert [s for s, _ in events] == [P, D]
    assert T0 + 20 <= events[-1][1] <= T0 + 21


async def test_silent_0005_undeliverable_when_ttl_passes(rig: Rig, account: Account) -> None:
    (mid,) = await insert(rig, account, [new_message(to("0005"), ttl=120)])
    rig.dispatcher()
    await rig.run(until=T0 + 119.5)
    assert (await record_of(rig.store, mid)).progress.status is P
    await rig.run(until=T0 + 200)
    events = await rig.store.events_of(mid)
    assert [s for s, _ in events] == [P, U]
    assert T0 + 120 <= events[-1][1] <= T0 + 121


@pytest.mark.parametrize(
    ("currency", "bill"), [("USD", 100_000), ("EUR", 92_000), ("UAH", 4_150_000)]
)
async def test_fallback_0003_viber_to_sms_bills_sms(rig: Rig, currency: str, bill: int) -> None:
    account = await make_account(rig.store, f"acct-{currency.lower()}", currency=currency)
    message = new_message(to("0003"), VIBER, SMS, parts=2)
    (mid,) = await insert(rig, account, [message])
    rig.dispatcher()
    await rig.run(until=T0 + 60)

    record = await record_of(rig.store, mid)
    assert record.progress.status is D
    assert (record.rate_micros, record.rate_currency, record.bill_micros) == (50_000, "USD", bill)
    assert rig.sends(mid) == Counter({Channel.VIBER: 1, Channel.SMS: 1})
    view = status_view(record)
    assert view["deliverystatus"] == "delivered"
    assert view["partscount"] == 2
    assert view["extendedStatuses"] == {"viber": "undeliverable", "sms": "delivered"}
    assert view["fallbacks"] == [{"type": "sms", "status": "delivered"}]
    assert (view["rate"], view["rateAmount"], view["rateCurrency"]) == (0.05, 0.1, "USD")
    assert view["billAmount"] == view["cost"] == bill / 1_000_000
    assert view["billCurrency"] == currency
    assert [s for s, _ in await rig.store.events_of(mid)] == [P, D]


async def test_stored_rates_override_configured(rig: Rig, account: Account) -> None:
    await rig.store.set_rate(Rate("sms", "38050", 70_000, "USD"))
    await rig.store.set_rate(Rate("sms", "3805012", 80_000, "EUR"))
    ids = await insert(
        rig,
        account,
        [new_message("+380501234567"), new_message("+380509994567"), new_message("+48601234567")],
    )
    rig.dispatcher()
    await rig.run(until=T0 + 60)
    got = [
        (r.rate_micros, r.rate_currency, r.bill_micros)
        for r in [await record_of(rig.store, mid) for mid in ids]
    ]
    assert got == [(80_000, "EUR", 86_957), (70_000, "USD", 70_000), (50_000, "USD", 50_000)]


async def test_crashed_worker_messages_are_taken_back(rig: Rig, account: Account) -> None:
    (mid,) = await insert(rig, account, [new_message()])
    lease = SETTINGS.dispatcher.lease_seconds
    # A worker claims the message and dies before doing anything with it.
    assert [r.id for r in await rig.store.claim_due("crashed", T0, lease, 10)] == [mid]
    rig.dispatcher()
    await rig.run(until=T0 + lease - TICK, stop_when_settled=False)
    assert rig.log == []
    assert (await record_of(rig.store, mid)).progress.status is DS.SCHEDULED
    await rig.run(until=T0 + lease + 30)
    assert (await record_of(rig.store, mid)).progress.status is D
    assert rig.sends(mid) == Counter({Channel.SMS: 1})


@dataclass
class Flaky:
    """A carrier whose first hand-over blows up (a connector bug, a dropped connection)."""

    inner: Connector
    failures: int = 1

    async def send(self, message: Outbound) -> SendResult:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("carrier hung up")
        return await self.inner.send(message)


async def test_connector_exception_is_retried(rig: Rig, account: Account) -> None:
    (mid,) = await insert(rig, account, [new_message()])
    rig.dispatcher(connector=Flaky(Simulator(SETTINGS.sandbox, clock=rig.clock)))
    await rig.run(until=T0 + 60)
    record = await record_of(rig.store, mid)
    assert record.progress.status is D
    assert [a for _, _, _, a in rig.log] == [1, 2]
    assert [s for s, _ in await rig.store.events_of(mid)] == [P, D]


def expected_sends(ending: str, chain: Iterable[MessageType]) -> Counter[Channel]:
    channels = [Channel.SMS if t is SMS else Channel.VIBER for t in chain]
    if ending == "0002":
        return Counter({c: RETRIES for c in channels})
    if ending == "0003":
        return Counter(channels)
    return Counter(channels[:1] if ending != "0001" else channels)


async def test_two_dispatchers_never_send_twice(
    rig: Rig, account: Account, database_url: str
) -> None:
    kinds = [("4567", (SMS,)), ("0001", (SMS,)), ("0003", (VIBER, SMS)), ("0002", (SMS,))]
    kinds += [("4567", (VIBER, SMS)), ("0001", (VIBER, SMS))]
    plan = [(kinds[i % len(kinds)][0], kinds[i % len(kinds)][1]) for i in range(60)]
    ids = await insert(rig, account, [new_message(to(e), *chain) for e, chain in plan])
    second = Store.connect(database_url)
    small = DispatcherSettings(batch_size=7, concurrency=4)
    try:
        rig.dispatcher(label="d1", settings=small)
        rig.dispatcher(store=second, label="d2", settings=small)
        assert rig.dispatchers[0].worker != rig.dispatchers[1].worker
        await rig.run(until=T0 + 120)
    finally:
        await second.close()

    handovers = [(mid, channel, attempt) for _, mid, channel, attempt in rig.log]
    assert len(handovers) == len(set(handovers)), "a message was handed over twice"
    assert {label for label, *_ in rig.log} == {"d1", "d2"}  # both did work
    for mid, (ending, chain) in zip(ids, plan, strict=True):
        assert rig.sends(mid) == expected_sends(ending, chain), (ending, chain)
        record = await record_of(rig.store, mid)
        assert record.progress.status.is_final
        statuses = [s for s, _ in await rig.store.events_of(mid)]
        expected_final = {"4567": D, "0001": U, "0003": D, "0002": E}[ending]
        assert statuses == ([E] if ending == "0002" else [P, expected_final])
