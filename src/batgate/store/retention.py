"""What retention removes, a small batch at a time (engine.retention runs them).

Each call is one short transaction over at most `limit` rows, found through an
index by age (migration 0008), so sends and status writes never wait long behind
it. Nothing that is still being worked on goes: a pending webhook event stays
whatever its age, and only final messages (no due time) are redacted or removed.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from batgate.store.database import Database
from batgate.store.schema import (
    carrier_costs,
    carrier_parts,
    carrier_receipts,
    idempotency_keys,
    message_events,
    message_notes,
    message_rollup,
    messagelists,
    messages,
    upstream_batch_members,
    upstream_batches,
    webhook_attempts,
)


class Retention:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def events(self, before: float, limit: int) -> int:
        """Message events older than `before` whose webhook is settled (never a pending
        one), with their webhook attempts; how many events went."""
        old = (
            sa.select(message_events.c.id)
            .where(message_events.c.at < before, message_events.c.state != "pending")
            .order_by(message_events.c.at)
            .limit(limit)
        )
        async with self.db.writer.begin() as conn:
            ids = list((await conn.execute(old)).scalars())
            if ids:
                await conn.execute(
                    webhook_attempts.delete().where(webhook_attempts.c.event_id.in_(ids))
                )
                await conn.execute(message_events.delete().where(message_events.c.id.in_(ids)))
        return len(ids)

    async def notes(self, before: float, limit: int) -> int:
        """Notes of failed attempts and ended steps older than `before`."""
        return await self._oldest_gone(message_notes, message_notes.c.at, before, limit)

    async def attempts(self, before: float, limit: int) -> int:
        """Webhook attempts older than `before` (of events that stay: a pending one's)."""
        return await self._oldest_gone(webhook_attempts, webhook_attempts.c.at, before, limit)

    async def _oldest_gone(
        self, table: sa.Table, at: sa.Column[float], before: float, limit: int
    ) -> int:
        """Up to `limit` rows of `table` whose `at` is before `before`, oldest first,
        deleted in one transaction; how many."""
        old = sa.select(table.c.id).where(at < before).order_by(at).limit(limit)
        async with self.db.writer.begin() as conn:
            ids = list((await conn.execute(old)).scalars())
            if ids:
                await conn.execute(table.delete().where(table.c.id.in_(ids)))
        return len(ids)

    async def idempotency_keys(self, before: float, limit: int) -> int:
        """Idempotency keys stored before `before` (past their window: never replayed)."""
        old = (
            sa.select(idempotency_keys.c.account_id, idempotency_keys.c.key)
            .where(idempotency_keys.c.created_at < before)
            .order_by(idempotency_keys.c.created_at)
            .limit(limit)
        )
        async with self.db.writer.begin() as conn:
            keys = (await conn.execute(old)).all()
            for account_id, key in keys:
                await conn.execute(
                    idempotency_keys.delete().where(
                        idempotency_keys.c.account_id == account_id,
                        idempotency_keys.c.key == key,
                        idempotency_keys.c.created_at < before,
                    )
                )
        return len(keys)

    async def messages(self, before: float, limit: int) -> int:
        """Final messages last changed before `before`, with everything about them
        (events, webhook attempts, carrier ids); a message list left empty goes too."""
        old = (
            sa.select(messages.c.id, messages.c.messagelist_id)
            .where(messages.c.due_at.is_(None), messages.c.updated_at < before)
            .order_by(messages.c.updated_at)
            .limit(limit)
        )
        async with self.db.writer.begin() as conn:
            rows = (await conn.execute(old)).all()
            if not rows:
                return 0
            ids = [r[0] for r in rows]
            events = sa.select(message_events.c.id).where(message_events.c.message_id.in_(ids))
            await conn.execute(
                webhook_attempts.delete().where(webhook_attempts.c.event_id.in_(events))
            )
            await conn.execute(message_events.delete().where(message_events.c.message_id.in_(ids)))
            await conn.execute(message_notes.delete().where(message_notes.c.message_id.in_(ids)))
            await conn.execute(carrier_parts.delete().where(carrier_parts.c.message_id.in_(ids)))
            await conn.execute(carrier_costs.delete().where(carrier_costs.c.message_id.in_(ids)))
            await conn.execute(messages.delete().where(messages.c.id.in_(ids)))
            lists = sorted({r[1] for r in rows})
            left = sa.select(messages.c.id).where(messages.c.messagelist_id == messagelists.c.id)
            await conn.execute(
                messagelists.delete().where(messagelists.c.id.in_(lists), ~left.exists())
            )
        return len(ids)

    async def carrier_ids(self, before: float, limit: int) -> int:
        """Carriers' ids of parts no receipt ended, and early receipts no part claimed,
        older than `before` (kept longer than the longest TTL)."""
        removed = 0
        async with self.db.writer.begin() as conn:
            for table, stamp in (
                (carrier_receipts, carrier_receipts.c.received_at),
                (carrier_parts, carrier_parts.c.created_at),
            ):
                keys = (
                    sa.select(table.c.connector, table.c.smsc_id)
                    .where(stamp < before)
                    .order_by(stamp)
                    .limit(limit)
                )
                found = (await conn.execute(keys)).all()
                for connector, smsc_id in found:
                    await conn.execute(
                        table.delete().where(
                            table.c.connector == connector, table.c.smsc_id == smsc_id
                        )
                    )
                removed = max(removed, len(found))
        return removed

    async def upstream_batches(self, before: float, limit: int) -> int:
        """Batches handed to SMSBAT upstreams before `before` (kept while an upstream
        keeps their keys), with their members; how many batches went."""
        async with self.db.writer.begin() as conn:
            found = (
                await conn.execute(
                    sa.select(upstream_batches.c.connector, upstream_batches.c.key)
                    .where(upstream_batches.c.created_at < before)
                    .order_by(upstream_batches.c.created_at)
                    .limit(limit)
                )
            ).all()
            for connector, key in found:
                for table in (upstream_batch_members, upstream_batches):
                    await conn.execute(
                        table.delete().where(table.c.connector == connector, table.c.key == key)
                    )
        return len(found)

    async def rollup(self, scale: str, before_slot: int, limit: int) -> int:
        """The console's counts (`message_rollup`) of slots before `before_slot` at that
        scale, the oldest slots first, about `limit` rows (whole slots); how many went."""
        r = message_rollup.c
        old = (r.scale == scale) & (r.slot < before_slot)
        async with self.db.writer.begin() as conn:
            cut = (
                await conn.execute(
                    sa.select(r.slot).where(old).order_by(r.slot).offset(limit - 1).limit(1)
                )
            ).scalar()
            upto = old if cut is None else old & (r.slot <= cut)
            done = await conn.execute(message_rollup.delete().where(upto))
        return int(done.rowcount or 0)

    async def redact(self, before: float, now: float, limit: int) -> int:
        """Blank the text and messageData of final messages last changed before `before`
        (their status, parts, channels and money stay); how many were redacted."""
        old = (
            sa.select(messages.c.id, messages.c.chain)
            .where(
                messages.c.due_at.is_(None),
                messages.c.redacted_at.is_(None),
                messages.c.updated_at < before,
            )
            .order_by(messages.c.updated_at)
            .limit(limit)
        )
        redact = (
            messages.update()
            .where(messages.c.id == sa.bindparam("mid"), messages.c.redacted_at.is_(None))
            .values(chain=sa.bindparam("redacted"), redacted_at=now)
        )
        async with self.db.writer.begin() as conn:
            rows = (await conn.execute(old)).all()
            if rows:
                await conn.execute(
                    redact, [{"mid": mid, "redacted": _redacted(chain)} for mid, chain in rows]
                )
        return len(rows)


def _redacted(chain: str) -> str:
    steps: list[dict[str, Any]] = orjson.loads(chain)
    for step in steps:
        step["text"] = None
        step["messageData"] = None
    return orjson.dumps(steps).decode()
