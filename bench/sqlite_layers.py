"""What one SQLite statement and one transaction cost through each layer batgate could use.

The same point read (3,000 times) and a one-statement transaction (1,000 times) on a
scratch WAL database, on one core:

- through batgate's writer (`Database.writer`: SQLAlchemy's asyncio layer over the
  inline aiosqlite connection of store/inline_sqlite.py; each statement a greenlet);
- through SQLAlchemy's synchronous engine (pysqlite), as a writer without the asyncio
  layer would;
- as a bare `sqlite3` statement (what the status path's point reads do).

    .venv/bin/python bench/sqlite_layers.py        → one JSON line, microseconds

docs/benchmarks.md ("Tried and not kept") has the figures and what they mean.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from batgate.store.database import Database  # noqa: E402

STATEMENTS = 3000
TRANSACTIONS = 1000
TABLE = sa.table("t", sa.column("x"))
READ = sa.select(TABLE.c.x).where(TABLE.c.x == sa.bindparam("v"))


def _per_call_us(started: float, calls: int) -> float:
    return round((time.perf_counter() - started) / calls * 1e6, 1)


async def through_batgate(path: Path) -> dict[str, float]:
    db = Database.connect(f"sqlite:///{path}")
    try:
        started = time.perf_counter()
        async with db.writer.begin() as conn:
            for i in range(STATEMENTS):
                (await conn.execute(READ, {"v": i})).fetchall()
        statement = _per_call_us(started, STATEMENTS)
        started = time.perf_counter()
        for i in range(TRANSACTIONS):
            async with db.writer.begin() as conn:
                (await conn.execute(READ, {"v": i})).fetchall()
        transaction = _per_call_us(started, TRANSACTIONS)
    finally:
        await db.dispose()
    return {"statement_us": statement, "transaction_us": transaction}


def through_sync_engine(path: Path) -> dict[str, float]:
    engine = sa.create_engine(
        f"sqlite:///{path}",
        poolclass=sa.pool.StaticPool,
        connect_args={"isolation_level": None},
    )

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    with engine.connect() as conn:
        started = time.perf_counter()
        with conn.begin():
            for i in range(STATEMENTS):
                conn.execute(READ, {"v": i}).fetchall()
        statement = _per_call_us(started, STATEMENTS)
        started = time.perf_counter()
        for i in range(TRANSACTIONS):
            with conn.begin():
                conn.execute(READ, {"v": i}).fetchall()
        transaction = _per_call_us(started, TRANSACTIONS)
    engine.dispose()
    return {"statement_us": statement, "transaction_us": transaction}


def bare(path: Path) -> dict[str, float]:
    raw = sqlite3.connect(path, isolation_level=None)
    sql = "SELECT x FROM t WHERE x = ?"
    started = time.perf_counter()
    for i in range(STATEMENTS):
        raw.execute(sql, (i,)).fetchall()
    statement = _per_call_us(started, STATEMENTS)
    started = time.perf_counter()
    for i in range(TRANSACTIONS):
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(sql, (i,)).fetchall()
        raw.execute("COMMIT")
    transaction = _per_call_us(started, TRANSACTIONS)
    raw.close()
    return {"statement_us": statement, "transaction_us": transaction}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="batgate-layers-") as work:
        path = Path(work) / "layers.db"
        setup = sqlite3.connect(path, isolation_level=None)
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (x INTEGER)")
        setup.close()
        out: dict[str, Any] = {
            "batgate_writer": asyncio.run(through_batgate(path)),
            "sqlalchemy_sync": through_sync_engine(path),
            "sqlite3": bare(path),
            "cpu": sorted(os.sched_getaffinity(0)),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
