"""Group commit of sends: batches of concurrent requests stored in one transaction.

A send is one transaction, and a transaction costs a fixed price whatever it holds
— BEGIN, COMMIT, a thread hop per statement on SQLite (where one writer takes
them in turn anyway), round trips on PostgreSQL. At one message per request that
price is nearly all of the work. So sends that arrive while a transaction is
being written wait for it to end and then go in together, in one transaction:
one INSERT of their message lists (RETURNING the ids, in order) and one of all
their messages. Each request still gets its own list and its own answer, and
nothing waits when the gateway is idle: the first send is written at once.

If the shared transaction fails, each of its requests is written alone, so a
request only ever fails for its own reasons. Sends with an `Idempotency-Key` do
not come here (their key is claimed in their own transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batgate.domain.messages import NewMessage
from batgate.domain.records import Account
from batgate.store.database import Database
from batgate.store.rows import NEW_MESSAGE_COLUMNS, new_message_values
from batgate.store.schema import messagelists, messages

Stored = tuple[int, list[str]]  # a send's message list id, and its messages' ids

# Messages one shared transaction takes at most (a request is never split).
GROUP_MESSAGES = 5000

_LISTS = messagelists.insert().returning(messagelists.c.id, sort_by_parameter_order=True)


@dataclass(slots=True)
class _Send:
    account: Account
    batch: Sequence[NewMessage]
    now: float
    done: asyncio.Future[Stored] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Intake:
    def __init__(self, db: Database, new_id: Callable[[], str]) -> None:
        self._db = db
        self._new_id = new_id
        self._waiting: list[_Send] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Sends are being written or wait to be: the API is taking messages."""
        return bool(self._waiting) or (self._writer is not None and not self._writer.done())

    async def store(self, account: Account, batch: Sequence[NewMessage], now: float) -> Stored:
        """Store the batch (with others waiting meanwhile); its list id and message ids."""
        send = _Send(account, batch, now)
        self._waiting.append(send)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="intake")
        return await asyncio.shield(send.done)  # a client gone does not cancel the others

    async def _write_all(self) -> None:
        while self._waiting:
            group = self._next_group()
            try:
                answers = await self._write(group)
            except Exception as exc:
                if len(group) == 1:
                    _fail(group[0], exc)
                    continue
                for send in group:  # alone, so that each fails only for its own reasons
                    try:
                        (answer,) = await self._write([send])
                    except Exception as alone:
                        _fail(send, alone)
                    else:
                        _settle(send, answer)
            else:
                for send, answer in zip(group, answers, strict=True):
                    _settle(send, answer)

    def _next_group(self) -> list[_Send]:
        group = [self._waiting.pop(0)]
        size = len(group[0].batch)
        while self._waiting and size + len(self._waiting[0].batch) <= GROUP_MESSAGES:
            send = self._waiting.pop(0)
            group.append(send)
            size += len(send.batch)
        return group

    async def _write(self, group: list[_Send]) -> list[Stored]:
        async with self._db.writer.begin() as conn:
            return await insert_batches(
                conn, [(s.account, s.batch, s.now) for s in group], self._new_id
            )


Batch = tuple[Account, Sequence[NewMessage], float]  # whose, the messages, when


async def insert_batches(
    conn: AsyncConnection, batches: Sequence[Batch], new_id: Callable[[], str]
) -> list[Stored]:
    """The one way messages go in: a message list per batch (one INSERT … RETURNING)
    and all their messages (one executemany); each batch's list id and message ids."""
    lists = [
        {"account_id": account.id, "message_count": len(batch), "created_at": now}
        for account, batch, now in batches
    ]
    if len(lists) == 1:
        list_ids = [(await conn.execute(_LISTS.values(lists[0]))).scalar_one()]
    else:
        list_ids = list((await conn.execute(_LISTS, lists)).scalars())
    rows: list[tuple[Any, ...]] = []
    stored: list[Stored] = []
    for (account, batch, now), list_id in zip(batches, list_ids, strict=True):
        ids = [new_id() for _ in batch]
        rows += [
            new_message_values(i, list_id, account.id, account.currency, m, now)
            for i, m in zip(ids, batch, strict=True)
        ]
        stored.append((list_id, ids))
    if rows:
        await insert_messages(conn, rows)
    return stored


_INSERT_SQL: dict[str, str] = {}


async def insert_messages(conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
    """INSERT new messages (tuples in NEW_MESSAGE_COLUMNS order) with one executemany of
    the driver's own SQL: SQLAlchemy compiles it once, and the rows skip its per-row
    parameter processing, half the cost of a send on SQLite."""
    dialect = conn.dialect
    sql = _INSERT_SQL.get(dialect.name)
    if sql is None:
        insert = messages.insert().values({c: sa.bindparam(c) for c in NEW_MESSAGE_COLUMNS})
        compiled = insert.compile(dialect=dialect)
        order = compiled.positiontup or []
        if list(order) != list(NEW_MESSAGE_COLUMNS):
            raise RuntimeError(f"unexpected parameter order {order}")
        sql = _INSERT_SQL[dialect.name] = str(compiled)
    await conn.exec_driver_sql(sql, rows)


def _settle(send: _Send, answer: Stored) -> None:
    if not send.done.done():
        send.done.set_result(answer)


def _fail(send: _Send, error: Exception) -> None:
    if not send.done.done():
        send.done.set_exception(error)
        send.done.exception()  # retrieved: no "never retrieved" warning if nobody waits
