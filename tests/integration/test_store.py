"""The store on a real SQLite file: accounts, batches, leases, compare-and-set, rates."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from integration_support import make_account, new_message

from batgate.domain.credentials import key_hash
from batgate.domain.lifecycle import Action, Progress, Transition, on_due, on_sent
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt
from batgate.domain.pricing import Rate
from batgate.domain.records import Account, MessageRecord
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus as CS
from batgate.domain.status import DeliveryStatus as DS
from batgate.store.manager import DuplicateAccountError, Priced, Store
from batgate.store.schema import metadata
from databases import Databases, Raw, raw_connection

T0 = 1_700_000_000.0
LEASE = 30.0
RETRY = RetryPolicy((1.0,), jitter=0.0)


def count(raw: Raw, table: str) -> int:
    (n,) = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


def claim_of(raw: Raw, message_id: str) -> tuple[str | None, float | None]:
    row = raw.execute(
        "SELECT claimed_by, claimed_until FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    return row[0], row[1]


async def insert(store: Store, account: Account, *batch: NewMessage, now: float = T0) -> list[str]:
    _, ids = await store.insert_batch(account, list(batch) or [new_message()], now)
    return ids


# -- accounts ------------------------------------------------------------------


async def test_create_account(store: Store) -> None:
    account = await store.create_account("alice", "h" * 64, "$argon2id$x", None, "whsec_x", "EUR")
    assert account.id >= 1
    assert (account.username, account.currency, account.webhook_secret) == (
        "alice",
        "EUR",
        "whsec_x",
    )
    assert (account.disabled, account.password_hash, account.webhook_url) == (
        False,
        "$argon2id$x",
        None,
    )


@pytest.mark.parametrize(
    ("username", "key"),
    [("alice", "other-key"), ("bob", "key-of-alice")],
    ids=["same-username", "same-key"],
)
async def test_duplicate_account(store: Store, username: str, key: str) -> None:
    await make_account(store, "alice")
    with pytest.raises(DuplicateAccountError):
        await make_account(store, username, key=key)
    assert [a.username for a in await store.list_accounts()] == ["alice"]


async def test_account_lookups(store: Store) -> None:
    alice = await make_account(store, "alice")
    bob = await make_account(store, "bob", currency="UAH")
    assert await store.account_by_key_hash(key_hash("key-of-alice")) == alice
    assert await store.account_by_username("bob") == bob
    assert await store.account_by_id(bob.id) == bob
    assert await store.account_by_key_hash(key_hash("nobody")) is None
    assert await store.account_by_username("carol") is None
    assert await store.account_by_id(999) is None
    assert await store.list_accounts() == [alice, bob]


async def test_update_account(store: Store) -> None:
    alice = await make_account(store, "alice")
    updated = await store.update_account(
        "alice", disabled=True, webhook_url="https://example.com/hook"
    )
    assert updated == replace(alice, disabled=True, webhook_url="https://example.com/hook")
    assert await store.account_by_username("alice") == updated
    assert await store.update_account("nobody", disabled=True) is None


# -- inserting and reading messages -----------------------------------------------


async def test_insert_batch_ids(store: Store, account: Account, raw: Raw) -> None:
    batch = [new_message(f"+3805012{i:05d}") for i in range(100)]
    list_id, ids = await store.insert_batch(account, batch, T0)
    assert len(ids) == len(set(ids)) == 100
    assert all(len(i) == 22 and int(i, 16) >= 0 for i in ids)
    assert count(raw, "messages") == 100
    rows = raw.execute("SELECT id, recipient, messagelist_id FROM messages").fetchall()
    assert {(i, m.to, list_id) for i, m in zip(ids, batch, strict=True)} == set(rows)
    (stored,) = raw.execute("SELECT message_count FROM messagelists WHERE id = ?", (list_id,))
    assert stored == (100,)


async def test_ids_are_time_ordered(store: Store, account: Account) -> None:
    before = int(time.time() * 1000)
    first = await insert(store, account, *[new_message() for _ in range(20)])
    await asyncio.sleep(0.005)
    second = await insert(store, account, *[new_message() for _ in range(20)])
    after = int(time.time() * 1000)
    assert max(first) < min(second)
    assert all(before <= int(i[:12], 16) <= after for i in first + second)


async def test_message_list_ids_increase(store: Store, account: Account) -> None:
    lists = [(await store.insert_batch(account, [new_message()], T0))[0] for _ in range(3)]
    assert lists == sorted(lists) and len(set(lists)) == 3


async def test_empty_batch(store: Store, account: Account, raw: Raw) -> None:
    list_id, ids = await store.insert_batch(account, [], T0)
    assert ids == []
    assert list_id >= 1
    assert count(raw, "messages") == 0


async def test_insert_batch_is_one_transaction(store: Store, account: Account, raw: Raw) -> None:
    good = new_message()
    # A recipient the database refuses (NOT NULL) as the batch's last message.
    step = replace(good.primary, to=None)  # type: ignore[arg-type]
    bad = NewMessage(customer_message_id=None, steps=(step,))
    with pytest.raises(Exception, match="(?i)not.null"):
        await store.insert_batch(account, [good, good, bad], T0)
    assert count(raw, "messages") == 0
    assert count(raw, "messagelists") == 0
    # The store is still usable afterwards.
    assert len(await insert(store, account, good)) == 1


async def test_get_message_round_trip(store: Store) -> None:
    account = await make_account(store, "eve", currency="EUR")
    data = {"img": "https://example.com/a.png", "buttonText": "Go", "nested": {"n": [1, 2.5]}}
    message = new_message(
        "+380501230003",
        MessageType.VIBER_PROMO,
        MessageType.RCS,
        MessageType.SMS,
        ttl=3600,
        parts=3,
        customer_id="order-7",
        data=data,
    )
    list_id, (mid,) = await store.insert_batch(account, [message], T0)
    record = await store.get_message(mid)
    assert record is not None
    assert record.chain == message.steps
    assert record.chain[0].message_data == data
    assert record.chain[2].parts == 3
    assert record.progress == Progress.new(message.steps, T0)
    assert (record.id, record.messagelist_id, record.account_id) == (mid, list_id, account.id)
    assert (record.customer_message_id, record.to, record.type) == (
        "order-7",
        "+380501230003",
        MessageType.VIBER_PROMO,
    )
    assert (record.version, record.bill_currency, record.created_at) == (0, "EUR", T0)
    assert (record.rate_micros, record.rate_currency, record.bill_micros) == (None, None, None)
    assert record.current == message.steps[0]


async def test_get_unknown_message(store: Store) -> None:
    assert await store.get_message("0" * 22) is None
    assert await store.get_message("") is None


# -- claiming due work ---------------------------------------------------------------


async def test_claim_due_leases(store: Store, account: Account, raw: Raw) -> None:
    (mid,) = await insert(store, account)
    claimed = await store.claim_due("w1", T0, LEASE, 10)
    assert [r.id for r in claimed] == [mid]
    assert claim_of(raw, mid) == ("w1", T0 + LEASE)
    # While the lease holds, nobody else (nor w1 itself) gets the message.
    for now in (T0, T0 + 1, T0 + LEASE - 0.001, T0 + LEASE):
        assert await store.claim_due("w2", now, LEASE, 10) == []
    # The worker crashed: once the lease ran out, another worker takes the message back.
    taken = await store.claim_due("w2", T0 + LEASE + 0.5, LEASE, 10)
    assert [r.id for r in taken] == [mid]
    assert claim_of(raw, mid) == ("w2", T0 + LEASE + 0.5 + LEASE)
    assert taken[0].version == claimed[0].version == 0


async def test_claim_due_only_due_messages(store: Store, account: Account) -> None:
    early = await insert(store, account, now=T0)
    late = await insert(store, account, now=T0 + 10)
    assert await store.claim_due("w1", T0 - 1, LEASE, 10) == []
    assert [r.id for r in await store.claim_due("w1", T0 + 5, LEASE, 10)] == early
    assert [r.id for r in await store.claim_due("w1", T0 + 10, LEASE, 10)] == late


async def test_claim_due_limit_and_order(store: Store, account: Account) -> None:
    ids = []
    for offset in (5, 1, 4, 2, 3):  # stored out of due order
        ids += await insert(store, account, now=T0 + offset)
    by_due = [ids[1], ids[3], ids[4], ids[2], ids[0]]
    first = await store.claim_due("w1", T0 + 10, LEASE, 2)
    second = await store.claim_due("w2", T0 + 10, LEASE, 10)
    assert [r.id for r in first] == by_due[:2]
    assert sorted(r.id for r in second) == sorted(by_due[2:])


async def test_final_messages_are_never_claimed(store: Store, account: Account) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 10)
    t = on_sent(record.progress, Failed("no", retryable=False), record.chain, RETRY, T0)
    assert t.progress.status is DS.UNDELIVERABLE
    assert await store.apply(record, t, T0)
    assert await store.claim_due("w1", T0 + 10**6, LEASE, 10) == []


async def test_two_stores_claim_disjoint_sets(
    store: Store, account: Account, database_url: str
) -> None:
    ids = await insert(store, account, *[new_message() for _ in range(60)])
    other = Store.connect(database_url)
    try:
        claims: list[list[MessageRecord]] = []
        for _ in range(10):
            claims += await asyncio.gather(
                store.claim_due("w1", T0, LEASE, 7), other.claim_due("w2", T0, LEASE, 7)
            )
    finally:
        await other.close()
    got = [r.id for batch in claims for r in batch]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(ids)


# -- compare-and-set ----------------------------------------------------------------


def sent(record: MessageRecord, now: float) -> Transition:
    decision = on_due(record.progress, record.chain, now)
    assert decision is Action.SEND
    receipt = ScheduledReceipt(CS.DELIVERED, now + 2)
    return on_sent(record.progress, Accepted("c-1", receipt), record.chain, RETRY, now)


async def test_apply_is_compare_and_set(store: Store, account: Account, raw: Raw) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 1)
    first = sent(record, T0)
    assert await store.apply(record, first, T0, Priced(50_000, "USD", None))
    stored = await store.get_message(mid)
    assert stored is not None
    assert (stored.version, stored.progress, stored.updated_at) == (1, first.progress, T0)
    assert (stored.rate_micros, stored.rate_currency, stored.bill_micros) == (50_000, "USD", None)
    assert claim_of(raw, mid) == (None, None)

    # A second worker with the stale record (version 0) loses and changes nothing.
    stale = on_sent(record.progress, Failed("no", retryable=False), record.chain, RETRY, T0 + 1)
    assert not await store.apply(record, stale, T0 + 1, Priced(1, "EUR", 0))
    assert await store.get_message(mid) == stored
    assert await store.events_of(mid) == [(DS.PROCESSING, T0)]

    # With the fresh record the next step applies.
    done = on_due(stored.progress, stored.chain, T0 + 2)
    assert isinstance(done, Transition)
    assert await store.apply(stored, done, T0 + 2)
    final = await store.get_message(mid)
    assert final is not None
    assert (final.version, final.progress.status, final.progress.due_at) == (2, DS.DELIVERED, None)
    # Without a price the earlier rate stays.
    assert (final.rate_micros, final.rate_currency) == (50_000, "USD")
    assert await store.events_of(mid) == [(DS.PROCESSING, T0), (DS.DELIVERED, T0 + 2)]


async def test_apply_writes_entered_events_in_order(store: Store, account: Account) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 1)
    t = on_sent(record.progress, Failed("no", retryable=False), record.chain, RETRY, T0 + 1)
    assert t.entered == (DS.PROCESSING, DS.UNDELIVERABLE)
    assert await store.apply(record, t, T0 + 1, Priced(50_000, "USD", 0))
    assert await store.events_of(mid) == [(DS.PROCESSING, T0 + 1), (DS.UNDELIVERABLE, T0 + 1)]


async def test_apply_without_entered_statuses_writes_no_events(
    store: Store, account: Account, raw: Raw
) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 1)
    t = on_sent(record.progress, Failed("busy", retryable=True), record.chain, RETRY, T0)
    assert t.entered == ()
    assert await store.apply(record, t, T0)
    assert await store.events_of(mid) == []
    assert count(raw, "message_events") == 0
    stored = await store.get_message(mid)
    assert stored is not None and stored.progress.attempts == 1


async def test_apply_events_interleaved_messages(store: Store, account: Account) -> None:
    a, b = await insert(store, account, new_message(), new_message())
    records = {r.id: r for r in await store.claim_due("w1", T0, LEASE, 10)}
    for mid, at in ((a, T0), (b, T0 + 1)):
        assert await store.apply(records[mid], sent(records[mid], at), at)
    for mid, at in ((b, T0 + 3), (a, T0 + 4)):
        record = await store.get_message(mid)
        assert record is not None
        done = on_due(record.progress, record.chain, at)
        assert isinstance(done, Transition)
        assert await store.apply(record, done, at)
    assert await store.events_of(a) == [(DS.PROCESSING, T0), (DS.DELIVERED, T0 + 4)]
    assert await store.events_of(b) == [(DS.PROCESSING, T0 + 1), (DS.DELIVERED, T0 + 3)]


async def test_apply_releases_the_claim(store: Store, account: Account) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 1)
    t = on_sent(record.progress, Failed("busy", retryable=True), record.chain, RETRY, T0)
    assert await store.apply(record, t, T0)
    # Due again after the retry delay, long before w1's lease would have run out.
    assert [r.id for r in await store.claim_due("w2", T0 + 1, LEASE, 1)] == [mid]


# -- release -------------------------------------------------------------------------


async def test_release(store: Store, account: Account, raw: Raw) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 1)
    await store.release(record)
    assert claim_of(raw, mid) == (None, None)
    (again,) = await store.claim_due("w2", T0, LEASE, 1)
    assert again == record  # untouched: same version, same progress


async def test_release_with_a_stale_record_keeps_the_newer_claim(
    store: Store, account: Account, raw: Raw
) -> None:
    (mid,) = await insert(store, account)
    (record,) = await store.claim_due("w1", T0, LEASE, 1)
    t = on_sent(record.progress, Failed("busy", retryable=True), record.chain, RETRY, T0)
    assert await store.apply(record, t, T0)
    (newer,) = await store.claim_due("w2", T0 + 1, LEASE, 1)
    await store.release(record)  # version 0: no longer the message's version
    assert claim_of(raw, mid) == ("w2", T0 + 1 + LEASE)
    assert newer.version == 1


# -- rates ---------------------------------------------------------------------------


async def test_rates_set_and_list(store: Store) -> None:
    assert await store.list_rates() == []
    for rate in (
        Rate("viber", "", 30_000, "USD"),
        Rate("sms", "380", 40_000, "UAH"),
        Rate("sms", "", 50_000, "USD"),
    ):
        await store.set_rate(rate)
    assert await store.list_rates() == [
        Rate("sms", "", 50_000, "USD"),
        Rate("sms", "380", 40_000, "UAH"),
        Rate("viber", "", 30_000, "USD"),
    ]


async def test_rate_on_same_key_replaces(store: Store, raw: Raw) -> None:
    await store.set_rate(Rate("sms", "380", 40_000, "USD"))
    await store.set_rate(Rate("sms", "380", 45_000, "EUR"))
    assert await store.list_rates() == [Rate("sms", "380", 45_000, "EUR")]
    assert count(raw, "rates") == 1


# -- the database file ----------------------------------------------------------------


async def test_wal_mode_is_on(store: Store, account: Account, raw: Raw) -> None:
    if raw.backend != "sqlite":
        pytest.skip("a SQLite setting")
    await insert(store, account)
    assert raw.scalar("PRAGMA journal_mode") == "wal"


async def test_migrations_create_exactly_the_schema(store: Store, raw: Raw) -> None:
    """The Alembic migrations and schema.py agree, on every backend."""
    assert raw.schema_diff(metadata) == []


def schema_of(database_url: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    with raw_connection(database_url) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        objects = conn.schema()
    return versions, objects


async def test_upgrade_is_idempotent(store: Store, account: Account, database_url: str) -> None:
    (mid,) = await insert(store, account)
    versions, objects = schema_of(database_url)
    assert len(versions) == 1
    tables = {name for name, _, _ in objects}
    assert {"accounts", "messagelists", "messages", "message_events", "rates"} <= tables

    await store.upgrade()
    await store.upgrade()
    other = Store.connect(database_url)
    try:
        await other.upgrade()
        assert await other.get_message(mid) is not None
    finally:
        await other.close()
    assert schema_of(database_url) == (versions, objects)
    assert await store.account_by_username(account.username) == account


async def test_step_json_round_trip_keeps_unicode(store: Store, account: Account) -> None:
    step = Step(MessageType.SMS, "+380501234567", "Shop", "Привіт 😀 €", None, 60, 2)
    (mid,) = await insert(store, account, NewMessage("ü-id", (step,)))
    record = await store.get_message(mid)
    assert record is not None
    assert record.chain == (step,)
    assert record.customer_message_id == "ü-id"


async def test_processes_starting_at_once_upgrade_one_at_a_time(
    databases: Databases, backend: str, tmp_path: Path
) -> None:
    """Five processes starting together on an empty database: every upgrade succeeds."""
    url = databases.url(backend, tmp_path, migrated=False)
    stores = [Store.connect(url) for _ in range(5)]
    try:
        await asyncio.gather(*(s.upgrade() for s in stores))
    finally:
        for s in stores:
            await s.close()
    with raw_connection(url) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() != []
        assert raw.schema_diff(metadata) == []


async def test_a_status_read_survives_the_server_dropping_its_connection(
    store: Store, account: Account, raw: Raw
) -> None:
    """PostgreSQL's point reads have a pool of their own; a dropped connection is replaced."""
    if raw.backend != "postgresql":
        pytest.skip("PostgreSQL's asyncpg point reads")
    (mid,) = await insert(store, account)
    assert (await store.get_message(mid)) is not None
    dropped = raw.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).scalar()
    assert dropped >= 1
    for _ in range(3):
        found = await store.get_message(mid)
        assert found is not None and found.id == mid
