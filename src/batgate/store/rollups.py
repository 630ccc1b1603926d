"""Reading the counts of final messages (`message_rollup`, domain.rollup) for the
console's overview: totals and series over a window, and the times to final, at the
scale of minutes ("m") or hours ("h"). Every read is a range of the primary key's
first columns (scale, slot): the last hour is ≤ 60 slots, 30 days 720."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from batgate.store.database import Database
from batgate.store.schema import message_rollup

r = message_rollup.c


@dataclass(frozen=True, slots=True)
class Count:
    channel: str
    connector: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class Point:
    """The messages that went final in one slice of the window (its first slot)."""

    slot: int
    status: str
    count: int


class Rollups:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def totals(self, scale: str, since: int) -> list[Count]:
        """By channel, connector and status, since that slot."""
        query = (
            sa.select(r.channel, r.connector, r.status, sa.func.sum(r.count))
            .where(r.scale == scale, r.slot >= since)
            .group_by(r.channel, r.connector, r.status)
        )
        async with self.db.reader.connect() as conn:
            return [Count(c, k, s, int(n)) for c, k, s, n in await conn.execute(query)]

    async def series(self, scale: str, since: int, per_slice: int) -> list[Point]:
        """By status per slice of `per_slice` slots, since that slot."""
        start = sa.cast((r.slot - since) / per_slice, sa.Integer) * per_slice + since
        slot = start.label("slice")
        query = (
            sa.select(slot, r.status, sa.func.sum(r.count))
            .where(r.scale == scale, r.slot >= since)
            .group_by(slot, r.status)
            .order_by(slot)
        )
        async with self.db.reader.connect() as conn:
            return [Point(int(m), s, int(n)) for m, s, n in await conn.execute(query)]

    async def times(self, scale: str, since: int) -> dict[int, int]:
        """How many went final in each time bucket (domain.rollup), since that slot."""
        query = (
            sa.select(r.bucket, sa.func.sum(r.count))
            .where(r.scale == scale, r.slot >= since)
            .group_by(r.bucket)
        )
        async with self.db.reader.connect() as conn:
            return {int(b): int(n) for b, n in await conn.execute(query)}
