"""The rate limit's token buckets, one row per account, shared by every API process."""

from __future__ import annotations

import sqlalchemy as sa

from batgate.domain.ratelimit import Grant, TokenBucket
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.schema import rate_buckets


class RateBuckets:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def grant(self, account_id: int, bucket: TokenBucket, want: int, now: float) -> Grant:
        """Take up to `want` tokens from the account's bucket, in one short transaction.

        The row is locked while it is read and written (FOR UPDATE on PostgreSQL;
        SQLite's writer lock), so two processes never hand out the same token.
        """
        row = rate_buckets.c
        async with self.db.writer.begin() as conn:
            await conn.execute(
                dialects.insert_missing(
                    self.db.dialect,
                    rate_buckets,
                    {"account_id": account_id, "tokens": bucket.burst, "stamp": now},
                )
            )
            read = sa.select(row.tokens, row.stamp).where(row.account_id == account_id)
            if self.db.dialect == "postgresql":
                read = read.with_for_update()
            tokens, stamp = (await conn.execute(read)).one()
            grant = bucket.grant(tokens, stamp, now, want)
            await conn.execute(
                sa.update(rate_buckets)
                .where(row.account_id == account_id)
                .values(tokens=grant.left, stamp=max(now, stamp))
            )
        return grant
