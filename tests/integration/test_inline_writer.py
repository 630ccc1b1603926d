"""SQLite's writer on the event loop (store/inline_sqlite.py), against a real file and a
real second connection holding the write lock, as another process would."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from batgate.store.database import Database
from batgate.store.inline_sqlite import InlineConnection, is_busy


@pytest.mark.parametrize(
    ("message", "code", "busy"),
    [
        ("database is locked", sqlite3.SQLITE_BUSY, True),
        ("database is locked", sqlite3.SQLITE_BUSY | (2 << 8), True),  # SQLITE_BUSY_SNAPSHOT
        ("database table is locked", sqlite3.SQLITE_LOCKED, False),
        ("no such table: x", sqlite3.SQLITE_ERROR, False),
        ("database is locked", None, True),  # no code: the text decides
        ("disk I/O error", None, False),
    ],
)
def test_what_counts_as_busy(message: str, code: int | None, busy: bool) -> None:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code
    assert is_busy(error) is busy


def _hold_write_lock(path: Path, seconds: float, holding: threading.Event) -> None:
    """Another writer (a CLI command, a second process) holding the lock for a while."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    holding.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "inline.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    return path


async def test_the_writer_waits_for_another_lock_without_holding_the_loop(db_file: Path) -> None:
    db = Database.connect(f"sqlite:///{db_file}")
    holding = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(db_file, 0.5, holding))
    holder.start()
    await asyncio.to_thread(holding.wait)
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0.01)
            beats += 1

    ticking = asyncio.create_task(heartbeat())
    try:
        async with db.writer.begin() as conn:  # BEGIN IMMEDIATE: refused, then tried again
            beats_while_waiting = beats
            # the other writer's row, committed: the lock came after its COMMIT
            seen = (await conn.execute(sa.text("SELECT x FROM t"))).all()
            await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
    finally:
        ticking.cancel()
        await asyncio.to_thread(holder.join)
        await db.dispose()
    # It had the lock only once the other writer had let go, and the loop went on
    # meanwhile: a loop blocked in SQLite's busy handler beats not at all before that.
    assert seen == [(1,)]
    assert beats_while_waiting >= 2
    rows = sqlite3.connect(db_file).execute("SELECT x FROM t ORDER BY x").fetchall()
    assert rows == [(1,), (2,)]


async def test_the_wait_ends_with_the_error_after_the_timeout(db_file: Path) -> None:
    connection = await InlineConnection.open(str(db_file), timeout=0.2)
    holding = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(db_file, 1.0, holding))
    holder.start()
    await asyncio.to_thread(holding.wait)
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.execute("BEGIN IMMEDIATE")
        assert time.monotonic() - started >= 0.2  # it tried for the whole timeout first
    finally:
        await connection.close()
        await asyncio.to_thread(holder.join)


async def test_statements_run_on_the_calling_thread(db_file: Path) -> None:
    """No thread of aiosqlite's: the connection's own thread is the loop's."""
    connection = await InlineConnection.open(str(db_file), timeout=1)
    seen: list[int] = []

    def whose() -> int:
        seen.append(threading.get_ident())
        return 0

    await connection.create_function("whose", 0, whose)
    async with connection.execute("SELECT whose()") as cursor:
        assert list(await cursor.fetchall()) == [(0,)]
    await connection.close()
    assert seen == [threading.get_ident()]
    assert not connection._thread.is_alive()


async def test_a_closed_connection_refuses_work(db_file: Path) -> None:
    connection = await InlineConnection.open(str(db_file), timeout=1)
    await connection.close()
    with pytest.raises(ValueError, match="no active connection|closed"):
        await connection.execute("SELECT 1")
