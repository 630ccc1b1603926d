"""Idempotency keys of send requests: look one up, claim it, keep its answer.

The key is claimed (inserted under its unique index, with the message list and ids
it stored) in the transaction that stores the batch, so of two transactions with
one key the second waits for the first; see `Store.send`. The answer, rendered by
the API after that transaction, is kept with the key next (`keep_answer`); a
replay before that (a crash in between, a retry racing the first) gets the list
and ids back, and the API renders the same answer from the same body.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batgate.store.schema import idempotency_keys


class IdempotencyConflict(Exception):
    """An idempotency key was used again with a different request body."""


class KeyTaken(Exception):
    """A concurrent transaction holds (or has committed) the same idempotency key."""

    def __init__(self, error: sa.exc.IntegrityError) -> None:
        super().__init__(str(error))
        self.error = error


# A loser of a race for a key replays at its next attempt; more than one more is a
# key that expired and was renewed concurrently again and again.
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: str
    body_hash: str  # SHA-256 of the request body
    window: float = 86_400.0


def key_is(account_id: int, key: str) -> sa.ColumnElement[bool]:
    return (idempotency_keys.c.account_id == account_id) & (idempotency_keys.c.key == key)


@dataclass(frozen=True, slots=True)
class Seen:
    """What a key stored: its message list and ids, and the answer once kept."""

    messagelist_id: int
    message_ids: list[str]
    answer: bytes | None


async def replay(
    conn: AsyncConnection, account_id: int, idem: Idempotency, now: float
) -> Seen | None:
    """What the key stored, or None when there is none (any more)."""
    where = key_is(account_id, idem.key)
    row = (await conn.execute(sa.select(idempotency_keys).where(where))).one_or_none()
    if row is None:
        return None
    expired = now - idem.window
    if row.created_at < expired:
        # Only while still expired: a concurrent request may have renewed the key
        # since we read it (PostgreSQL), and its fresh row must stay.
        await conn.execute(
            idempotency_keys.delete().where(where, idempotency_keys.c.created_at < expired)
        )
        return None
    if row.body_hash != idem.body_hash:
        raise IdempotencyConflict(idem.key)
    ids = list(orjson.loads(row.message_ids)) if row.message_ids else []
    answer = str(row.response).encode() if row.response else None
    return Seen(int(row.messagelist_id or 0), ids, answer)


async def claim_key(conn: AsyncConnection, account_id: int, idem: Idempotency, now: float) -> None:
    """Insert the key's row, before the batch is stored (what it stored and its answer
    follow); KeyTaken if one exists."""
    try:
        await conn.execute(
            idempotency_keys.insert().values(
                account_id=account_id,
                key=idem.key,
                body_hash=idem.body_hash,
                response="",
                created_at=now,
            )
        )
    except sa.exc.IntegrityError as exc:
        raise KeyTaken(exc) from exc


async def note_stored(
    conn: AsyncConnection,
    account_id: int,
    idem: Idempotency,
    messagelist_id: int,
    message_ids: list[str],
) -> None:
    """Keep, with the key claimed in this transaction, the list and ids it stored."""
    await conn.execute(
        idempotency_keys.update()
        .where(key_is(account_id, idem.key))
        .values(messagelist_id=messagelist_id, message_ids=orjson.dumps(message_ids).decode())
    )


async def keep_answer(
    conn: AsyncConnection, account_id: int, idem: Idempotency, response: bytes
) -> None:
    """Keep the answer rendered for the key, for replays."""
    await conn.execute(
        idempotency_keys.update()
        .where(key_is(account_id, idem.key))
        .values(response=response.decode())
    )
