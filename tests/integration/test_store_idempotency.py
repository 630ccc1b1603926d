"""`Idempotency-Key` in the store: replays, conflicts, the 24 h window, concurrent duplicates.

The concurrent cases use several stores on the same database, as several API
processes would: each has its own engines and connections, so on PostgreSQL the
transactions really overlap and the loser meets the unique index.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import orjson
import pytest
import sqlalchemy as sa
from integration_support import make_account, new_message

from batgate.domain.messages import NewMessage
from batgate.domain.records import Account
from batgate.store.idempotency import Idempotency, IdempotencyConflict
from batgate.store.manager import Store
from batgate.store.schema import idempotency_keys, messagelists, messages

T0 = 1_700_000_000.0
DAY = 86_400.0


def render(list_id: int, ids: list[str]) -> bytes:
    return orjson.dumps({"messagelistId": list_id, "messageIds": ids})


async def send(
    store: Store,
    account: Account,
    messages: list[NewMessage],
    now: float,
    key: Idempotency | None = None,
) -> bytes:
    """What the API does: store, render the answer after, keep it with the key."""
    sent = await store.send(account, messages, now, key)
    if sent.replayed:
        return sent.replayed
    answer = render(sent.messagelist_id, sent.message_ids)
    if key is not None:
        await store.keep_answer(account, key, answer)
    return answer


def idem(key: str, body: str = "body-1") -> Idempotency:
    return Idempotency(key, hashlib.sha256(body.encode()).hexdigest())


def batch(n: int = 3) -> list[NewMessage]:
    return [new_message(f"+3805012{i:05d}") for i in range(n)]


async def count(store: Store, table: sa.Table) -> int:
    async with store.db.reader.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


@asynccontextmanager
async def other_stores(store: Store, n: int) -> AsyncIterator[list[Store]]:
    """`n` more stores on the store's database, like `n` more API processes."""
    url = store.db.writer.url.render_as_string(hide_password=False)
    async with AsyncExitStack() as stack:
        others = []
        for _ in range(n):
            other = Store.connect(url)
            stack.push_async_callback(other.close)
            others.append(other)
        yield others


# -- one request after another ----------------------------------------------------------------


# (case, the second request: account ("same"/"other"), key, body, seconds after the first;
#  what it gets: "replay", "conflict" or "new")
SEQUENCES = [
    ("same key and body: the first answer", "same", "k-1", "body-1", 60.0, "replay"),
    ("same key, another body: refused", "same", "k-1", "body-2", 60.0, "conflict"),
    ("another key: a new batch", "same", "k-2", "body-1", 60.0, "new"),
    ("another account, same key: its own", "other", "k-1", "body-1", 60.0, "new"),
    ("just inside 24 h: the first answer", "same", "k-1", "body-1", DAY - 1, "replay"),
    ("after 24 h: a new batch", "same", "k-1", "body-1", DAY + 1, "new"),
    ("after 24 h another body: a new batch", "same", "k-1", "body-2", DAY + 1, "new"),
]


@pytest.mark.parametrize(
    ("who", "key", "body", "later", "outcome"),
    [pytest.param(*case[1:], id=case[0]) for case in SEQUENCES],
)
async def test_a_second_request_with_a_key(
    store: Store, account: Account, who: str, key: str, body: str, later: float, outcome: str
) -> None:
    first = await send(store, account, batch(), T0, idem("k-1", "body-1"))
    second_account = account if who == "same" else await make_account(store, "bob")

    async def again() -> bytes:
        return await send(store, second_account, batch(), T0 + later, idem(key, body))

    if outcome == "conflict":
        with pytest.raises(IdempotencyConflict):
            await again()
        assert await count(store, messagelists) == 1
        return
    second = await again()
    if outcome == "replay":
        assert second == first
        assert (await count(store, messagelists), await count(store, messages)) == (1, 3)
    else:
        assert orjson.loads(second)["messagelistId"] != orjson.loads(first)["messagelistId"]
        assert (await count(store, messagelists), await count(store, messages)) == (2, 6)


async def test_a_renewed_key_replays_the_new_answer(store: Store, account: Account) -> None:
    first = await send(store, account, batch(), T0, idem("k"))
    renewed = await send(store, account, batch(), T0 + DAY + 1, idem("k"))
    again = await send(store, account, batch(), T0 + DAY + 2, idem("k"))
    assert renewed != first and again == renewed
    assert await count(store, idempotency_keys) == 1


async def test_without_a_key_every_request_is_a_new_batch(store: Store, account: Account) -> None:
    answers = {await send(store, account, batch(), T0) for _ in range(3)}
    assert len(answers) == 3
    assert await count(store, idempotency_keys) == 0


async def test_a_failed_batch_leaves_no_key(store: Store, account: Account) -> None:
    nobody = replace(account, id=999_999)  # no such account: its list cannot be stored
    with pytest.raises(sa.exc.IntegrityError):
        await send(store, nobody, batch(), T0, idem("k"))
    assert (await count(store, idempotency_keys), await count(store, messagelists)) == (0, 0)
    answer = await send(store, account, batch(), T0, idem("k"))
    assert len(orjson.loads(answer)["messageIds"]) == 3


async def test_a_replay_before_the_answer_was_kept_gets_what_was_stored(
    store: Store, account: Account
) -> None:
    """The first request stored its batch, then went away before its answer was kept (a
    crash in between, or still rendering): a retry gets its list and ids back, to
    answer from the same body, and nothing is stored twice."""
    first = await store.send(account, batch(), T0, idem("k"))
    again = await store.send(account, batch(), T0 + 5, idem("k"))
    assert (again.messagelist_id, again.message_ids) == (first.messagelist_id, first.message_ids)
    assert again.replayed == b""  # nothing kept yet: render from these
    assert (await count(store, messagelists), await count(store, messages)) == (1, 3)


# -- concurrent duplicates ----------------------------------------------------------------------


@pytest.mark.parametrize(("processes", "each"), [(2, 1), (8, 2)], ids=["2x1", "8x2"])
async def test_concurrent_duplicates_store_one_batch_and_share_its_answer(
    store: Store, account: Account, processes: int, each: int
) -> None:
    async with other_stores(store, processes) as stores:
        sends = [send(s, account, batch(50), T0, idem("race")) for s in stores for _ in range(each)]
        answers = await asyncio.gather(*sends)
    assert len(set(answers)) == 1
    assert len(orjson.loads(answers[0])["messageIds"]) == 50
    assert (await count(store, messagelists), await count(store, messages)) == (1, 50)
    assert await count(store, idempotency_keys) == 1


async def test_concurrent_requests_with_one_key_and_two_bodies(
    store: Store, account: Account
) -> None:
    async with other_stores(store, 6) as stores:
        bodies = ["body-a", "body-b"] * 3
        sends = [
            send(s, account, batch(20), T0, idem("race", body))
            for s, body in zip(stores, bodies, strict=True)
        ]
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
    won = [(b, o) for b, o in zip(bodies, outcomes, strict=True) if isinstance(o, bytes)]
    lost = [(b, o) for b, o in zip(bodies, outcomes, strict=True) if not isinstance(o, bytes)]
    # Every request with the winner's body has the winner's answer; every other one is refused.
    assert len({b for b, _ in won}) == 1 and len({o for _, o in won}) == 1
    assert len(won) == 3 and len(lost) == 3
    assert all(isinstance(o, IdempotencyConflict) for _, o in lost)
    assert {b for b, _ in lost} == set(bodies) - {won[0][0]}
    assert (await count(store, messagelists), await count(store, messages)) == (1, 20)


HOLDERS: list[tuple[str, Callable[[], Idempotency], bool, str]] = [
    ("commits the same body: its answer", lambda: idem("held"), True, "replay"),
    ("commits another body: refused", lambda: idem("held", "other"), True, "conflict"),
    ("rolls back: the waiting request stores", lambda: idem("held"), False, "new"),
]


@pytest.mark.parametrize(
    ("holder", "commit", "outcome"),
    [pytest.param(*case[1:], id=case[0]) for case in HOLDERS],
)
async def test_a_request_waits_for_a_transaction_holding_its_key(
    store: Store,
    account: Account,
    holder: Callable[[], Idempotency],
    commit: bool,
    outcome: str,
) -> None:
    """Another process has claimed the key and not committed yet: the request waits for it."""
    held = holder()
    winner = b'{"messagelistId": 999, "from": "the other process"}'
    async with other_stores(store, 1) as (other,):
        async with other.db.writer.connect() as conn:
            transaction = await conn.begin()
            await conn.execute(
                idempotency_keys.insert().values(
                    account_id=account.id,
                    key=held.key,
                    body_hash=held.body_hash,
                    response=winner.decode(),
                    created_at=T0,
                )
            )
            waiting = asyncio.create_task(send(store, account, batch(), T0 + 1, idem("held")))
            await asyncio.sleep(0.5)
            assert not waiting.done()  # held up by the other transaction
            await (transaction.commit() if commit else transaction.rollback())
        if outcome == "conflict":
            with pytest.raises(IdempotencyConflict):
                await waiting
            return
        answer = await waiting
    if outcome == "replay":
        assert answer == winner
        assert await count(store, messagelists) == 0
    else:
        assert len(orjson.loads(answer)["messageIds"]) == 3
        assert await count(store, messagelists) == 1
