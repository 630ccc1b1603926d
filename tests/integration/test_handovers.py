"""Carrier receipts meeting their hand-overs in the real store, in either order.

The dispatcher and the store are real (both backends); only the carrier is
scripted: it answers each send with the SMSC's ids of the message's parts, as the
SMPP connector does. Receipts go in through `store.receipts`, as the connector's
receipt writer puts them. Time is a hand-moved clock, so nothing waits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from integration_support import Clock, new_message

from batgate.channels.base import Outbound
from batgate.channels.smpp.receipts import IdSpelling
from batgate.config import DispatcherSettings, Settings
from batgate.domain.messages import Channel
from batgate.domain.outcomes import Accepted, CarrierId, Handover, PartReceipt, SendResult
from batgate.domain.records import Account
from batgate.domain.status import ChannelStatus as CS
from batgate.domain.status import DeliveryStatus as DS
from batgate.engine.dispatcher import Dispatcher
from batgate.engine.ratebook import RateBook, configured_rates
from batgate.store.manager import Store
from databases import Raw

T0 = 1_700_000_000.0
SETTINGS = Settings.model_construct()
D, U = CS.DELIVERED, CS.UNDELIVERABLE


@dataclass
class Scripted:
    """A carrier that takes every message and names its parts as the test says."""

    parts: tuple[CarrierId, ...]
    sends: int = 0

    async def send(self, message: Outbound) -> SendResult:
        self.sends += 1
        return Accepted(f"smpp-{self.sends}", handover=Handover("c1", self.parts))


def ids(*keys: str) -> tuple[CarrierId, ...]:
    return tuple(CarrierId(k) for k in keys)


def said(key: str, status: CS) -> str:
    """What the carrier says in its receipt for a part."""
    return f"SMSC: {status.value.upper()} err:{key}"


# Events: "send" — the dispatcher's tick hands the message over and writes the parts;
# (key, status) — a receipt for that part id. After the events one more tick applies
# what was announced. (id, parts, events, final status)
CASES: list[tuple[str, tuple[str, ...], list[object], DS]] = [
    ("receipt after the part", ("a",), ["send", ("a", D)], DS.DELIVERED),
    ("receipt before the part", ("a",), [("a", D), "send"], DS.DELIVERED),
    ("undeliverable after", ("a",), ["send", ("a", U)], DS.UNDELIVERABLE),
    ("undeliverable before", ("a",), [("a", U), "send"], DS.UNDELIVERABLE),
    ("all parts delivered", ("a", "b", "c"), ["send", ("a", D), ("c", D), ("b", D)], DS.DELIVERED),
    ("parts both sides", ("a", "b", "c"), [("b", D), "send", ("a", D), ("c", D)], DS.DELIVERED),
    ("all parts early", ("a", "b"), [("b", D), ("a", D), "send"], DS.DELIVERED),
    ("one part fails", ("a", "b", "c"), ["send", ("a", D), ("b", U)], DS.UNDELIVERABLE),
    ("one part fails early", ("a", "b", "c"), [("c", U), "send"], DS.UNDELIVERABLE),
    ("a part missing", ("a", "b", "c"), ["send", ("a", D), ("c", D)], DS.PROCESSING),
    ("no receipt yet", ("a",), ["send"], DS.PROCESSING),
    ("a repeated receipt", ("a",), ["send", ("a", D), ("a", D)], DS.DELIVERED),
    ("a receipt for another id", ("a",), ["send", ("z", D)], DS.PROCESSING),
    ("the first word counts", ("a", "b"), ["send", ("a", U), ("a", D), ("b", D)], DS.UNDELIVERABLE),
]


async def _run(
    store: Store,
    account: Account,
    parts: tuple[CarrierId, ...],
    events: list[object],
    lookups: dict[str, tuple[str, ...]] | None = None,
    applied_by: str = "tick",
) -> tuple[str, Scripted]:
    """Run the events; what receipts ended is then applied by a dispatcher's tick, or
    (`applied_by="receipts"`) at once by the reconciler, as the engine does."""
    clock = Clock(T0)
    carrier = Scripted(parts)
    dispatcher = Dispatcher(
        store,
        {channel: carrier for channel in Channel},
        RateBook(store, configured_rates(SETTINGS.rates)),
        DispatcherSettings(),
        SETTINGS.fx,
        clock=clock,
    )
    _, (message_id,) = await store.insert_batch(account, [new_message()], clock())
    for event in events:
        clock.advance(0.1)
        if event == "send":
            assert await dispatcher.tick() == 1
        else:
            key, status = event  # type: ignore[misc]
            aliases = (lookups or {}).get(key, ())
            receipt = PartReceipt(CarrierId(key, aliases), status, said(key, status))
            ended = await store.receipts.record("c1", [receipt], clock())
            if applied_by == "receipts":
                await dispatcher.reconciler.apply(ended)
    clock.advance(0.1)
    if applied_by == "tick":
        await dispatcher.tick()
    return message_id, carrier


@pytest.mark.parametrize("applied_by", ["tick", "receipts"])
@pytest.mark.parametrize(
    ("parts", "events", "final"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_receipts_meet_their_parts(
    store: Store,
    account: Account,
    parts: tuple[str, ...],
    events: list[object],
    final: DS,
    applied_by: str,
) -> None:
    message_id, carrier = await _run(store, account, ids(*parts), events, applied_by=applied_by)
    record = await store.get_message(message_id)
    assert record is not None
    assert record.progress.status is final
    assert carrier.sends == 1
    if final.is_final:
        assert record.progress.steps == (CS(final.value),)
    # The story tells what the carrier said of the part that failed, whichever came first.
    story = " | ".join(line.reason or "" for line in await store.story(message_id))
    failed = [e for e in events if isinstance(e, tuple) and e[1] is U]
    if final is DS.UNDELIVERABLE:
        assert said(failed[0][0], U) in story, story
    assert "err:" not in story or failed, story


@pytest.mark.parametrize(
    ("mode", "resp", "receipt"),
    [
        ("auto", "1A2B", "6699"),
        ("auto", "6699", "1a2b"),
        ("same", "000123", "123"),
        ("hex_to_decimal", "ff", "255"),
    ],
)
@pytest.mark.parametrize("early", [False, True], ids=["after", "before"])
async def test_ids_in_another_spelling_meet(
    store: Store, account: Account, mode: str, resp: str, receipt: str, early: bool
) -> None:
    spelling = IdSpelling(mode)  # type: ignore[arg-type]
    key = spelling.part_key(resp)
    part = CarrierId(key, spelling.part_lookups(key)[1:])
    lookups = spelling.lookups(receipt)
    events: list[object] = [(lookups[0], D), "send"] if early else ["send", (lookups[0], D)]
    message_id, _ = await _run(store, account, (part,), events, {lookups[0]: lookups[1:]})
    record = await store.get_message(message_id)
    assert record is not None and record.progress.status is DS.DELIVERED


async def test_parts_and_early_receipts_are_cleaned_up(
    store: Store, account: Account, raw: Raw
) -> None:
    await _run(store, account, ids("a", "b"), [("a", D), "send", ("b", D)])
    assert raw.scalar("SELECT count(*) FROM carrier_parts") == 0
    assert raw.scalar("SELECT count(*) FROM carrier_receipts") == 0


async def test_a_receipt_its_hand_over_did_not_see_is_taken_after_the_write(
    store: Store, account: Account, raw: Raw
) -> None:
    """PostgreSQL can let a receipt's transaction and its hand-over's miss each other
    (each looked before the other committed). The hand-over's side looks again once it
    has committed (`take_early`), and the receipt's side too (`record`): whichever
    commits last sees the other. Here the receipt is kept early as if it had missed."""
    if raw.backend != "postgresql":
        pytest.skip("SQLite's writers take turns: the race cannot happen")
    message_id, _ = await _run(store, account, ids("a"), ["send"])
    raw.execute(
        "INSERT INTO carrier_receipts (connector, smsc_id, aliases, status, received_at)"
        " VALUES (?, ?, ?, ?, ?)",
        ("c1", "a", "", "delivered", T0 + 1.0),
    )
    handover = Handover("c1", ids("a"))
    assert await store.receipts.take_early([handover], now=T0 + 1.5) == [message_id]
    record = await store.get_message(message_id)
    assert record is not None and record.progress.receipt is CS.DELIVERED
    assert record.progress.due_at == T0 + 1.5  # due at once: the reconciler applies it
    assert raw.scalar("SELECT count(*) FROM carrier_receipts") == 0
    assert await store.receipts.take_early([handover], now=T0 + 2.0) == []


async def test_applying_receipts_never_sends(store: Store, account: Account) -> None:
    """Applying receipts on messages without a noted receipt changes nothing: a
    scheduled message is a dispatcher's to claim and send."""
    carrier = Scripted(ids("a"))
    dispatcher = Dispatcher(
        store,
        {channel: carrier for channel in Channel},
        RateBook(store, configured_rates(SETTINGS.rates)),
        DispatcherSettings(),
        SETTINGS.fx,
        clock=Clock(T0 + 5),
    )
    _, (scheduled,) = await store.insert_batch(account, [new_message()], T0)
    assert await dispatcher.reconciler.apply([scheduled, "no-such-id"]) == 0
    assert carrier.sends == 0
    record = await store.get_message(scheduled)
    assert record is not None and record.progress.status is DS.SCHEDULED


@pytest.mark.parametrize("parts", [2, 3, 5])
async def test_receipts_for_the_parts_of_one_hand_over_written_at_once_end_it(
    store: Store, account: Account, parts: int
) -> None:
    """Each part's receipt in its own transaction, all at once (a receipt batch beside
    the receipts a hand-over's write takes afterwards): on PostgreSQL each used to see
    the others' parts unanswered, mark its own, and none ended the hand-over — the
    message waited for ever. The parts of a hand-over are locked while its outcome is
    read, so the last transaction sees every answer."""
    keys = tuple(f"p{n}" for n in range(parts))
    message_id, _ = await _run(store, account, ids(*keys), ["send"])
    ended = await asyncio.gather(
        *(store.receipts.record("c1", [PartReceipt(CarrierId(k), D)], T0 + 1) for k in keys)
    )
    assert sorted(m for e in ended for m in e) == [message_id]
    record = await store.get_message(message_id)
    assert record is not None and record.progress.receipt is CS.DELIVERED
