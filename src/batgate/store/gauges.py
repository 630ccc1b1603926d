"""What monitoring reads from the database: the queue, the webhook backlog, a ping.

The counts run over the partial indexes `ix_messages_due` (messages that still
have a due time) and `ix_message_events_pending` (webhook events to send), so
their cost follows the backlog, not the size of the tables; callers cache them
(see :mod:`batgate.observability.backlog`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from batgate.store.database import Database
from batgate.store.schema import message_events, messages

# A literal rather than a bound parameter: a partial index qualifies when the query's
# WHERE term repeats the index's own, value included, as the planner sees it.
_PENDING = message_events.c.state == sa.literal_column("'pending'")

_QUEUE = sa.select(
    sa.func.count(),
    sa.func.coalesce(
        sa.func.sum(sa.case((messages.c.due_at <= sa.bindparam("now"), 1), else_=0)), 0
    ),
    sa.func.min(messages.c.due_at),
).where(messages.c.due_at.is_not(None))

_WEBHOOKS = sa.select(sa.func.count(), sa.func.min(message_events.c.at)).where(_PENDING)

_PING = sa.text("SELECT 1")


@dataclass(frozen=True, slots=True)
class Backlog:
    """A reading of the work waiting in the database at one moment."""

    queued: int  # messages the engine still has to look at (they have a due time)
    due: int  # of them, due at the moment of reading
    earliest_due_at: float | None  # the earliest due time among the queued messages
    webhooks_pending: int  # webhook events not yet delivered nor given up
    oldest_pending_at: float | None  # when the oldest of them happened

    def oldest_due_age(self, now: float) -> float:
        """Seconds the most overdue message has waited past its due time (0 if none)."""
        if self.earliest_due_at is None:
            return 0.0
        return max(0.0, now - self.earliest_due_at)

    def oldest_pending_age(self, now: float) -> float:
        """Seconds since the oldest pending webhook event happened (0 if none)."""
        if self.oldest_pending_at is None:
            return 0.0
        return max(0.0, now - self.oldest_pending_at)


class Gauges:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._file_probe = _file_probe(db)

    async def backlog(self, now: float) -> Backlog:
        """Both counts in one read transaction (one snapshot)."""
        async with self.db.reader.connect() as conn:
            queued, due, earliest = (await conn.execute(_QUEUE, {"now": now})).one()
            pending, oldest = (await conn.execute(_WEBHOOKS)).one()
        return Backlog(int(queued), int(due), earliest, int(pending), oldest)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query.

        On SQLite the pooled connections keep working on a file that was deleted
        or moved away (they hold it open), while everything else — other
        processes, the CLI, the next start — opens the configured path. So the
        file is also opened afresh, read-write and never created.
        """
        async with self.db.reader.connect() as conn:
            await conn.execute(_PING)
        if self._file_probe is not None:
            await asyncio.to_thread(_read_schema, self._file_probe)


def _file_probe(db: Database) -> sa.Engine | None:
    """An engine opening the SQLite file anew on every connect, never creating it."""
    url = db.writer.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    uri = f"file:{quote(str(Path(url.database)))}?mode=rw"
    return sa.create_engine(
        "sqlite+pysqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, timeout=1.0, check_same_thread=False),
        poolclass=sa.pool.NullPool,
    )


def _read_schema(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM sqlite_master")).one()
