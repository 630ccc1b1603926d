"""Group commit of sends (batgate.store.intake), on the real store of each backend.

Many requests arriving together are written in shared transactions, yet each keeps its
own message list, its own ids and its own answer; one request's failure fails no other.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import sqlalchemy as sa
from integration_support import make_account, new_message

from batgate.domain.messages import NewMessage
from batgate.domain.records import Account
from batgate.store.manager import Store
from databases import Raw

NOW = 1_700_000_000.0


def render(list_id: int, ids: list[str]) -> bytes:
    return f"{list_id}:{','.join(ids)}".encode()


async def send(store: Store, account: Account, batch: list[NewMessage], now: float) -> bytes:
    sent = await store.send(account, batch, now)
    return render(sent.messagelist_id, sent.message_ids)


@pytest.mark.parametrize(("requests", "per_request"), [(1, 3), (40, 1), (12, 25)])
async def test_concurrent_sends_each_get_their_own_list_and_answer(
    store: Store, account: Account, raw: Raw, requests: int, per_request: int
) -> None:
    batches = [
        [new_message(f"+38050{r:03d}{m:04d}") for m in range(per_request)] for r in range(requests)
    ]
    answers = await asyncio.gather(*(send(store, account, batch, NOW) for batch in batches))
    lists = [int(a.decode().split(":")[0]) for a in answers]
    assert len(set(lists)) == requests
    for answer, batch in zip(answers, batches, strict=True):
        list_id, ids = answer.decode().split(":")
        ids_of_list = ids.split(",")
        assert len(ids_of_list) == len(batch)
        stored = raw.execute(
            "SELECT id, recipient FROM messages WHERE messagelist_id = ? ORDER BY id", (list_id,)
        ).all()
        assert sorted(i for i, _ in stored) == sorted(ids_of_list)
        assert sorted(r for _, r in stored) == sorted(m.to for m in batch)
        counted = raw.scalar("SELECT message_count FROM messagelists WHERE id = ?", (list_id,))
        assert counted == len(batch)


async def test_one_failing_request_fails_alone(store: Store, account: Account, raw: Raw) -> None:
    """A request that fails inside the shared transaction (here: its account does not
    exist) is written again alone and fails; the others of its group are stored."""
    nobody = replace(account, id=999_999)
    batches = [[new_message(f"+380501{r:02d}0000")] for r in range(8)]
    owners = [nobody if r == 3 else account for r in range(8)]
    results = await asyncio.gather(
        *(send(store, a, b, NOW) for a, b in zip(owners, batches, strict=True)),
        return_exceptions=True,
    )
    assert isinstance(results[3], sa.exc.IntegrityError)
    assert all(isinstance(r, bytes) for i, r in enumerate(results) if i != 3)
    assert raw.scalar("SELECT count(*) FROM messages") == 7
    assert raw.scalar("SELECT count(*) FROM messagelists") == 7


async def test_accounts_keep_their_own_lists(store: Store, account: Account, raw: Raw) -> None:
    other = await make_account(store, "bob")
    answers = await asyncio.gather(
        send(store, account, [new_message("+380501110001")], NOW),
        send(store, other, [new_message("+380501110002")], NOW),
    )
    owners = [
        raw.scalar(
            "SELECT account_id FROM messagelists WHERE id = ?", (int(a.decode().split(":")[0]),)
        )
        for a in answers
    ]
    assert owners == [account.id, other.id]
