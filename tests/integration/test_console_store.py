"""What the console reads and writes, on the real store of each backend: the rollup
kept as messages go final (and read back, and purged), operators and their sessions,
and the search of messages by keyset."""

from __future__ import annotations

from dataclasses import replace

import pytest
from integration_support import Clock, make_account, new_message

from batgate.config import RetentionSettings
from batgate.domain.lifecycle import on_receipt, on_sent
from batgate.domain.messages import MessageType
from batgate.domain.outcomes import Accepted
from batgate.domain.records import Account
from batgate.domain.retry import RetryPolicy
from batgate.domain.rollup import bucket_of
from batgate.domain.status import ChannelStatus
from batgate.engine.cancels import Cancels
from batgate.engine.changes import Changes
from batgate.engine.ratebook import RateBook
from batgate.engine.retention import Janitor
from batgate.store.manager import Store
from batgate.store.message_search import Filters
from batgate.store.operators import DuplicateOperatorError
from databases import Raw

NOW = 1_700_000_040.0  # a minute's start + 40 s
RETRY = RetryPolicy((1.0,), jitter=0.0)


async def deliver(store: Store, account: Account, to: str, at: float) -> str:
    """A message sent at NOW, handed to connector c1, delivered at `at`."""
    sent = await store.send(account, [new_message(to)], NOW)
    (record,) = await store.claim_due("w", NOW, 60, 10)
    handed = on_sent(record.progress, Accepted("ref-1"), record.chain, RETRY, NOW, None, "c1")
    assert await store.apply(record, handed, NOW)
    record = await store.get_message(sent.message_ids[0])
    assert record is not None and record.progress.connector == "c1"
    done = on_receipt(record.progress, ChannelStatus.DELIVERED, record.chain, at)
    assert done is not None
    assert await store.apply(record, done, at)
    return sent.message_ids[0]


async def test_a_message_going_final_is_counted_by_minute_and_hour(
    store: Store, account: Account, raw: Raw
) -> None:
    await deliver(store, account, "+380501234567", NOW + 2.5)
    rows = raw.execute(
        "SELECT scale, slot, account_id, channel, connector, status, bucket, count "
        "FROM message_rollup ORDER BY scale"
    ).all()
    minute, hour = int((NOW + 2.5) // 60), int((NOW + 2.5) // 3600)
    bucket = bucket_of(2.5)
    assert [tuple(r) for r in rows] == [
        ("h", hour, account.id, "sms", "c1", "delivered", bucket, 1),
        ("m", minute, account.id, "sms", "c1", "delivered", bucket, 1),
    ]
    await deliver(store, account, "+380501234568", NOW + 2.6)  # the same key: added up
    assert raw.scalar("SELECT count FROM message_rollup WHERE scale = 'm'") == 2
    totals = await store.rollups.totals("m", minute)
    assert [(c.channel, c.connector, c.status, c.count) for c in totals] == [
        ("sms", "c1", "delivered", 2)
    ]
    assert await store.rollups.times("h", hour) == {bucket: 2}
    points = await store.rollups.series("m", minute - 5, 5)
    assert [(p.slot, p.status, p.count) for p in points] == [(minute, "delivered", 2)]


async def test_a_cancel_is_counted_and_a_move_that_is_not_final_is_not(
    store: Store, account: Account, raw: Raw
) -> None:
    sent = await store.send(account, [new_message("+380501234567", MessageType.VIBER_OTP)], NOW)
    (record,) = await store.claim_due("w", NOW, 60, 10)
    handed = on_sent(record.progress, Accepted("r"), record.chain, RETRY, NOW, None, "up")
    assert await store.apply(record, handed, NOW)
    assert raw.scalar("SELECT count(*) FROM message_rollup") == 0  # processing: not final
    other = await store.send(account, [new_message("+380501234568")], NOW)
    clock = Clock(NOW + 1)
    cancels = Cancels(
        store, Changes(store, {"USD": 1.0}, clock=clock), RateBook(store, []), "t", clock
    )
    await cancels.cancel(account.id, other.message_ids[0])
    rows = raw.execute(
        "SELECT channel, connector, status, count FROM message_rollup WHERE scale = 'm'"
    ).all()
    assert [tuple(r) for r in rows] == [("sms", "", "permanenterror", 1)]
    assert sent.message_ids


async def test_retention_purges_old_counts(store: Store, account: Account, raw: Raw) -> None:
    await deliver(store, account, "+380501234567", NOW + 1)
    janitor = Janitor(store.retention, RetentionSettings(), clock=lambda: NOW + 3 * 86_400)
    removed = await janitor.once()
    assert removed["rollup_minutes"] == 1 and removed["rollup_hours"] == 0
    assert [s for (s,) in raw.execute("SELECT scale FROM message_rollup").all()] == ["h"]


# -- operators -------------------------------------------------------------------------


async def test_operators_and_sessions(store: Store) -> None:
    ops = store.operators
    alice = await ops.create("alice", "hash-a", NOW)
    with pytest.raises(DuplicateOperatorError):
        await ops.create("alice", "hash-b", NOW)
    assert [o.name for o in await ops.every()] == ["alice"]
    await ops.open_session(alice, "t1", "csrf-1", NOW, NOW + 60)
    found = await ops.session("t1", NOW + 1)
    assert found is not None and (found.operator.name, found.csrf) == ("alice", "csrf-1")
    assert await ops.session("t1", NOW + 61) is None  # expired
    assert await ops.session("nope", NOW) is None
    await ops.open_session(alice, "t2", "csrf-2", NOW, NOW + 60)
    assert await ops.set_disabled("alice", True)
    assert await ops.session("t2", NOW + 1) is None  # disabling ends every session
    assert await ops.set_disabled("alice", False)
    assert await ops.session("t2", NOW + 1) is None  # and they stay ended
    await ops.open_session(alice, "t3", "csrf-3", NOW, NOW + 60)
    await ops.close_session("t3")
    assert await ops.session("t3", NOW + 1) is None
    assert not await ops.set_disabled("nobody", True)


# -- search ------------------------------------------------------------------------------


async def test_search_pages_newest_first_by_keyset(store: Store, account: Account) -> None:
    bob = await make_account(store, "bob")
    ids = []
    for i in range(12):
        sent = await store.send(account, [new_message("+380501234567")], NOW + i)
        ids.append(sent.message_ids[0])
    await store.send(bob, [new_message("+380501234567")], NOW + 100)
    await store.send(account, [new_message("+380509999999")], NOW + 100)
    wanted = Filters(recipient="+380501234567", account_id=account.id)
    seen: list[str] = []
    after = None
    while page := await store.search.search(wanted, after, 5):
        seen += [m.id for m in page]
        after = (page[-1].created_at, page[-1].id)
    assert seen == ids[::-1]
    assert [m.id for m in await store.search.search(Filters(message_id=ids[3]), None, 5)] == [
        ids[3]
    ]
    since = await store.search.search(replace(wanted, since=NOW + 10), None, 50)
    assert [m.id for m in since] == ids[:9:-1]
    everything = [m.id async for m in store.search.every(Filters(), 100, page=4)]
    assert len(everything) == 14
    sms = await store.search.search(Filters(channel_types=("viber_promo",)), None, 50)
    assert sms == []
