"""The database gauges and the readiness ping on the real store (store/gauges.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import make_account, new_message
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from batgate.domain.lifecycle import Action, Transition, on_due, on_sent
from batgate.domain.notifications import DeliveryAttempt, Notification
from batgate.domain.outcomes import Accepted, Failed, ScheduledReceipt
from batgate.domain.records import Account, MessageRecord
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus as CS
from batgate.observability import readiness
from batgate.observability.backlog import BacklogGauges
from batgate.store.gauges import Backlog, Gauges
from batgate.store.manager import Store

T0 = 1_700_000_000.0
RETRY = RetryPolicy((1.0,), jitter=0.0)


def handed_over(record: MessageRecord, now: float, receipt_in: float = 2.0) -> Transition:
    assert on_due(record.progress, record.chain, now) is Action.SEND
    receipt = ScheduledReceipt(CS.DELIVERED, now + receipt_in)
    return on_sent(record.progress, Accepted("c-1", receipt), record.chain, RETRY, now)


def on_sent_final(record: MessageRecord) -> Transition:
    t = on_sent(record.progress, Failed("no", retryable=False), record.chain, RETRY, T0 + 1)
    assert t.progress.status.is_final
    return t


def with_payloads(t: Transition) -> list[Notification]:
    return [Notification(status, b'{"x":1}') for status in t.entered]


async def test_empty_database(store: Store) -> None:
    reading = await Gauges(store.db).backlog(T0)
    assert reading == Backlog(0, 0, None, 0, None)
    assert (reading.oldest_due_age(T0), reading.oldest_pending_age(T0)) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("now", "due", "age"),
    [
        (T0 - 1, 0, 0.0),  # stored, not due yet
        (T0, 3, 0.0),  # due this instant
        (T0 + 7.5, 3, 7.5),  # nobody claimed them for 7.5 s
    ],
)
async def test_queue(store: Store, account: Account, now: float, due: int, age: float) -> None:
    await store.insert_batch(account, [new_message() for _ in range(3)], T0)
    reading = await Gauges(store.db).backlog(now)
    assert (reading.queued, reading.due, reading.earliest_due_at) == (3, due, T0)
    assert reading.oldest_due_age(now) == age


async def test_queue_follows_the_messages(store: Store, account: Account) -> None:
    gauges = Gauges(store.db)
    _, (a, b) = await store.insert_batch(account, [new_message(), new_message()], T0)
    records = {r.id: r for r in await store.claim_due("w1", T0, 30.0, 10)}
    # Claimed but not yet written: still queued and due.
    assert (await gauges.backlog(T0 + 1)).due == 2

    # a is handed over: due again when its receipt is (T0 + 3), not now.
    assert await store.apply(records[a], handed_over(records[a], T0 + 1), T0 + 1)
    reading = await gauges.backlog(T0 + 2)
    assert (reading.queued, reading.due, reading.earliest_due_at) == (2, 1, T0)

    # b is final: out of the queue; a's receipt is 1 s overdue at T0 + 4.
    assert await store.apply(records[b], on_sent_final(records[b]), T0 + 1)
    reading = await gauges.backlog(T0 + 4)
    assert (reading.queued, reading.due, reading.earliest_due_at) == (1, 1, T0 + 3)
    assert reading.oldest_due_age(T0 + 4) == 1.0


async def test_webhook_backlog(store: Store) -> None:
    gauges = Gauges(store.db)
    hooked = await make_account(store, "hooked")
    await store.update_account("hooked", webhook_url="http://127.0.0.1:9/hook")
    quiet = await make_account(store, "quiet")  # no URL: its events are not pending
    await store.insert_batch(hooked, [new_message(), new_message()], T0)
    await store.insert_batch(quiet, [new_message()], T0)
    claimed = await store.claim_due("w1", T0, 30.0, 10)
    # The hooked account's messages first, so their events are the oldest.
    claimed.sort(key=lambda r: r.account_id != hooked.id)
    for at, record in enumerate(claimed, start=1):
        t = handed_over(record, T0 + at)
        assert await store.apply(record, t, T0 + at, notifications=with_payloads(t))

    reading = await gauges.backlog(T0 + 10)
    assert (reading.webhooks_pending, reading.oldest_pending_at) == (2, T0 + 1)
    assert reading.oldest_pending_age(T0 + 10) == 9.0

    # The oldest is delivered: the next one is now the oldest pending.
    (first, _) = await store.outbox.claim("s1", T0 + 10, 30.0, 10)
    await store.outbox.record(
        [DeliveryAttempt(first.id, T0 + 10, 5.0, 200, None, "delivered", 1, None)]
    )
    reading = await gauges.backlog(T0 + 10)
    assert (reading.webhooks_pending, reading.oldest_pending_at) == (1, T0 + 2)


async def test_collector_on_the_real_store(store: Store, account: Account) -> None:
    await store.insert_batch(account, [new_message() for _ in range(4)], T0)
    clock = [T0 + 5.0]
    backlog = BacklogGauges(Gauges(store.db), max_age=0.0, timeout=5.0, clock=lambda: clock[0])
    registry = CollectorRegistry()
    registry.register(backlog)
    await backlog.refresh()
    values = {
        s.name: s.value
        for family in text_string_to_metric_families(_exposition(registry))
        for s in family.samples
    }
    assert values["batgate_database_up"] == 1
    assert values["batgate_queue_messages"] == 4
    assert values["batgate_queue_due_messages"] == 4
    assert values["batgate_queue_oldest_due_age_seconds"] == 5.0
    assert values["batgate_webhook_backlog_events"] == 0
    assert values["batgate_webhook_oldest_pending_age_seconds"] == 0


def _exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_ping_answers(store: Store) -> None:
    await Gauges(store.db).ping()
    assert await readiness.answer(Gauges(store.db), 2.0) == (200, b'{"status":"ready"}')


async def test_ping_fails_when_the_sqlite_file_is_moved_away(store: Store) -> None:
    if store.db.dialect != "sqlite":
        pytest.skip("a SQLite file")
    gauges = Gauges(store.db)
    path = Path(str(store.db.writer.url.database))
    await gauges.ping()  # the pool's connections are open now
    away = path.with_name(path.name + ".away")
    path.rename(away)
    try:
        with pytest.raises(Exception, match="unable to open"):
            await gauges.ping()
        status, body = await readiness.answer(gauges, 2.0)
        assert status == 503
        assert b'"NOT_READY"' in body
    finally:
        away.rename(path)
    await gauges.ping()
