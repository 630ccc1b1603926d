"""Idempotency keys of send requests: look one up, claim it, keep its response.

The key is claimed (inserted under its unique index) before the batch is stored,
so of two transactions with one key the second waits for the first; see
`Store.send_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


async def replay(
    conn: AsyncConnection, account_id: int, idem: Idempotency, now: float
) -> bytes | None:
    """The stored response of the key, or None when there is none (any more)."""
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
    return str(row.response).encode()


async def claim_key(conn: AsyncConnection, account_id: int, idem: Idempotency, now: float) -> None:
    """Insert the key's row (its response follows once rendered); KeyTaken if one exists."""
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


async def store_response(
    conn: AsyncConnection, account_id: int, idem: Idempotency, response: bytes
) -> None:
    """Keep the response of the key claimed in this transaction, for replays."""
    await conn.execute(
        idempotency_keys.update()
        .where(key_is(account_id, idem.key))
        .values(response=response.decode())
    )
