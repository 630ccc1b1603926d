"""SQLite's writer connection run on the event loop, without aiosqlite's thread.

aiosqlite runs every call on a thread of its own: the cursor, the execute, the fetch
and the close of one statement are four hops there and back, each a thread wake-up
and an event-loop wake-up. SQLite's own work on the writer's statements is a few
microseconds (WAL, `synchronous = NORMAL`: a commit does not wait for the disk), so
on a busy gateway the hops cost more than the statements: a profile of one-message
sends put a quarter of the process's time in them. `InlineConnection` keeps
aiosqlite's interface, which SQLAlchemy's `sqlite+aiosqlite` dialect drives, and runs
each call at once on the calling thread.

The one place SQLite waits is a lock held by another process (a CLI command, a
`batgate worker` beside `serve --no-workers`). A thread can sleep in SQLite's busy
handler; the event loop must not. So the connection's own busy timeout is 0, and a
statement refused with SQLITE_BUSY outside a transaction (the writer's `BEGIN
IMMEDIATE`, in practice) is tried again after an `asyncio.sleep`, 1 ms doubling to
50 ms, for as long as `timeout` allows, while the loop serves everything else. Inside
a write transaction SQLite never waits on another connection (WAL), so nothing else
can be refused that way.

Long statements do hold the loop while they run; the reader engine (listings, the
console's reports) keeps aiosqlite's thread for that reason, and the writer's own
long work (retention) goes in bounded batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import aiosqlite

BUSY_FIRST_WAIT = 0.001  # seconds; doubled after each refusal
BUSY_MAX_WAIT = 0.05


def is_busy(error: BaseException) -> bool:
    """SQLITE_BUSY ("database is locked"), as the sqlite3 module reports it."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "locked" in str(error)


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: SQLAlchemy's dialect puts its
    isolation-level change there directly; this runs it at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to whoever awaits the future
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, every call made on the calling thread (see the module)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], timeout: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]
        self._busy_timeout = timeout

    @classmethod
    async def open(cls, path: str, timeout: float) -> InlineConnection:
        def connector() -> sqlite3.Connection:
            connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=0")
            return connection

        connection = cls(connector, timeout)
        await connection._connect()
        return connection

    def __await__(self) -> Any:  # no thread to start
        return self._connect().__await__()

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or self._connection.in_transaction:
                raise
        return await self._retry(fn, args, kwargs)

    async def _retry(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        """Another process holds the write lock: wait without holding the loop."""
        deadline = time.monotonic() + self._busy_timeout
        wait = BUSY_FIRST_WAIT
        while True:
            await asyncio.sleep(wait)
            wait = min(wait * 2, BUSY_MAX_WAIT)
            if self._connection is None:
                raise ValueError("Connection closed")
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()
