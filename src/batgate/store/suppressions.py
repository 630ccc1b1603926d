"""Each account's suppression list (`suppressions`, SPEC §11): the numbers it may not
send to. The rules are domain.optout's; this is where the list is kept and read.

The send path asks `suppressed(account_id, numbers)` once per batch: one lookup on
the primary key (`account_id = ? AND number IN (…)`) on the connections of the hot
point reads (SQLite's synchronous lookup connection, PostgreSQL's asyncpg pool).
Most accounts have no list at all, and for them even that lookup is skipped: each
process remembers per account whether it has any suppression, for
`cache_seconds` (the setting `suppression_cache_seconds`, 1 s by default).

What that costs in consistency, with several processes: only an account's *first*
suppression can be missed, and only by another process, for at most
`cache_seconds` after it was added (an account known to have a list is looked up
on every batch, so a later addition counts at once everywhere). A change made
through this store is known to it at once. 0 turns the memory off (a lookup per
batch for every account).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa

from batgate.domain.optout import Suppression
from batgate.store import dialects
from batgate.store.database import Database
from batgate.store.schema import suppressions

Rows = Callable[..., Awaitable[list[tuple[Any, ...]]]]

# Numbers per IN-list of a lookup (SQLite binds each as a parameter).
_IN_LIST = 500
_IN_SIZES = (1, 4, 16, 64, 256, _IN_LIST)
_LISTED_SQLITE = {
    size: "SELECT number FROM suppressions WHERE account_id = ? AND number IN "
    f"({','.join('?' * size)})"
    for size in _IN_SIZES
}

_ANY_SQLITE = "SELECT 1 FROM suppressions WHERE account_id = ? LIMIT 1"
_ANY_PG = "SELECT 1 FROM suppressions WHERE account_id = $1 LIMIT 1"
_LISTED_PG = "SELECT number FROM suppressions WHERE account_id = $1 AND number = ANY($2::varchar[])"
_COLUMNS = (suppressions.c.number, suppressions.c.source, suppressions.c.created_at)


class Suppressions:
    def __init__(
        self,
        db: Database,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._clock = clock
        # Per account: (has any suppression, known until); and a count of this
        # store's own writes, so that a read overtaken by one is not remembered.
        self._any: dict[int, tuple[bool, float]] = {}
        self._writes = 0
        self._pg_any: Rows | None = None
        self._pg_listed: Rows | None = None
        if db.lookup is None and db.fast is not None:
            self._pg_any = db.fast.rows_reader(_ANY_PG)
            self._pg_listed = db.fast.rows_reader(_LISTED_PG)

    # -- the send path --------------------------------------------------------

    async def suppressed(self, account_id: int, numbers: Collection[str]) -> set[str]:
        """Those of `numbers` on the account's list (one lookup; none for an account
        known to have no list)."""
        if not numbers or not await self.has_any(account_id):
            return set()
        wanted = list(numbers)
        raw = self._sqlite()
        if raw is not None:
            found: set[str] = set()
            for start in range(0, len(wanted), _IN_LIST):
                chunk = wanted[start : start + _IN_LIST]
                # Padded to a few lengths (the last number repeated): a statement per
                # length stays in sqlite3's statement cache, beside the status reads'.
                size = next(n for n in _IN_SIZES if n >= len(chunk))
                chunk += [chunk[-1]] * (size - len(chunk))
                found.update(n for (n,) in raw.execute(_LISTED_SQLITE[size], (account_id, *chunk)))
            return found
        if self._pg_listed is not None:
            return {n for (n,) in await self._pg_listed(account_id, wanted)}
        async with self.db.reader.connect() as conn:  # neither fast path: plain Core
            result = await conn.execute(
                sa.select(suppressions.c.number).where(
                    suppressions.c.account_id == account_id, suppressions.c.number.in_(wanted)
                )
            )
            return set(result.scalars())

    async def has_any(self, account_id: int) -> bool:
        """Whether the account has a suppression list (remembered `cache_seconds`)."""
        now = self._clock()
        known = self._any.get(account_id)
        if known is not None and known[1] > now:
            return known[0]
        writes = self._writes
        found = await self._read_any(account_id)
        if self.cache_seconds > 0 and writes == self._writes:
            self._any[account_id] = (found, now + self.cache_seconds)
        return found

    async def _read_any(self, account_id: int) -> bool:
        raw = self._sqlite()
        if raw is not None:
            return raw.execute(_ANY_SQLITE, (account_id,)).fetchone() is not None
        if self._pg_any is not None:
            return bool(await self._pg_any(account_id))
        async with self.db.reader.connect() as conn:
            query = sa.select(sa.literal(1)).where(suppressions.c.account_id == account_id)
            return (await conn.execute(query.limit(1))).first() is not None

    def _sqlite(self) -> Any:
        """SQLite's synchronous lookup connection (the DB-API one), or None."""
        if self.db.lookup is None:
            return None
        raw = self.db.lookup.connection.driver_connection
        if raw is None:
            raise RuntimeError("the lookup connection is closed")
        return raw

    def changed(self, account_id: int, has_any: bool | None) -> None:
        """Another part of this store changed the account's list (inbound keywords)."""
        self._wrote(account_id, has_any)

    def _wrote(self, account_id: int, has_any: bool | None) -> None:
        """This store changed the account's list: what it knows now (None: ask)."""
        self._writes += 1
        if has_any is None or self.cache_seconds <= 0:
            self._any.pop(account_id, None)
        else:
            self._any[account_id] = (has_any, self._clock() + self.cache_seconds)

    # -- the list -------------------------------------------------------------

    async def add(
        self, account_id: int, numbers: Sequence[str], source: str, now: float
    ) -> set[str]:
        """Put `numbers` (E.164, checked by the caller) on the account's list, in one
        transaction; the ones that were not there yet. A number already listed keeps
        its source and time: the first opt-out is the one on record."""
        rows = [
            {"account_id": account_id, "number": n, "source": source, "created_at": now}
            for n in dict.fromkeys(numbers)
        ]
        if not rows:
            return set()
        insert = dialects.insert_missing(self.db.dialect, suppressions).returning(
            suppressions.c.number
        )
        async with self.db.writer.begin() as conn:
            added = set((await conn.execute(insert, rows)).scalars())
        self._wrote(account_id, True)
        return added

    async def remove(self, account_id: int, number: str) -> Suppression | None:
        """Take `number` off the account's list; what was there, or None."""
        delete = (
            suppressions.delete()
            .where(suppressions.c.account_id == account_id, suppressions.c.number == number)
            .returning(*_COLUMNS)
        )
        async with self.db.writer.begin() as conn:
            row = (await conn.execute(delete)).one_or_none()
        self._wrote(account_id, None)
        return None if row is None else Suppression(*row)

    async def counts(self) -> dict[int, int]:
        """How many numbers each account with a list has on it."""
        query = sa.select(suppressions.c.account_id, sa.func.count()).group_by(
            suppressions.c.account_id
        )
        async with self.db.reader.connect() as conn:
            return {int(a): int(n) for a, n in await conn.execute(query)}

    async def entries(self, account_id: int, numbers: Sequence[str]) -> dict[str, Suppression]:
        """The account's entries among `numbers`, by number."""
        wanted = list(dict.fromkeys(numbers))
        found: dict[str, Suppression] = {}
        async with self.db.reader.connect() as conn:
            for start in range(0, len(wanted), _IN_LIST):
                query = sa.select(*_COLUMNS).where(
                    suppressions.c.account_id == account_id,
                    suppressions.c.number.in_(wanted[start : start + _IN_LIST]),
                )
                found.update((row[0], Suppression(*row)) for row in await conn.execute(query))
        return found

    async def page(
        self, account_id: int, *, after: str | None, limit: int
    ) -> tuple[list[Suppression], bool]:
        """Up to `limit` entries of the account's list in number order, after the number
        `after` (keyset paging on the primary key); and whether more follow."""
        query = (
            sa.select(*_COLUMNS)
            .where(suppressions.c.account_id == account_id)
            .order_by(suppressions.c.number)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(suppressions.c.number > after)
        async with self.db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Suppression(*row) for row in rows[:limit]], len(rows) > limit

    async def every(self, account_id: int, page_size: int = 10_000) -> AsyncIterator[Suppression]:
        """The account's whole list in number order, read a page at a time."""
        after: str | None = None
        while True:
            entries, more = await self.page(account_id, after=after, limit=page_size)
            for entry in entries:
                yield entry
            if not more:
                return
            after = entries[-1].number
