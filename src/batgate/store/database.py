"""Engines, connection settings and migrations: the dialect-specific corner of the store.

Everything that differs between SQLite and PostgreSQL lives here and in
:mod:`batgate.store.dialects`; the rest of the store is plain SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from batgate.store.inline_sqlite import InlineConnection

if TYPE_CHECKING:
    import asyncpg

# The newest migration (a test checks it against Alembic's head). A database already
# there is not handed to Alembic at all: each CLI command and process start saves
# Alembic's import and its reading of the migration scripts.
HEAD_REVISION = "0019"

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> sa.URL:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`, `postgresql://…` → asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


@dataclass(frozen=True, slots=True)
class Database:
    """A writer and a reader engine; on PostgreSQL they are the same engine.

    On SQLite there is also `lookup`: a synchronous autocommit connection for
    point reads by primary key on the hot status path. Such a read takes ~15 µs,
    less than the hop to aiosqlite's thread and back (~500 µs through the async
    engine), so it runs right on the event loop; WAL readers never wait for writers.
    """

    writer: AsyncEngine
    reader: AsyncEngine
    dialect: str
    lookup: sa.Connection | None = None
    fast: PointReads | None = None  # PostgreSQL's counterpart of `lookup`

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 8, max_overflow: int = 0) -> Database:
        target = async_url(url)
        if target.get_backend_name() == "sqlite":
            return cls(
                writer=_sqlite_engine(target, writer=True),
                reader=_sqlite_engine(target, writer=False),
                dialect="sqlite",
                lookup=_sqlite_lookup(make_url(url)),
            )
        engine = create_async_engine(
            target,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            # The claims' best plan depends on their parameters (how much is due):
            # a generic plan of the webhook claim scanned all events (2.4 s at
            # 10,000,000) where the custom one reads the pending index (0.05 ms).
            connect_args={
                "server_settings": {
                    "application_name": "batgate",
                    "plan_cache_mode": "force_custom_plan",
                }
            },
        )
        return cls(
            writer=engine,
            reader=engine,
            dialect="postgresql",
            fast=PointReads(make_url(url), size=pool_size),
        )

    def point_read(self, query: sa.Select[Any]) -> Callable[[Any], tuple[Any, ...] | None]:
        """A function running `query` (one bound parameter) on the lookup connection.

        The statement is compiled by SQLAlchemy once; each call is then a plain
        DBAPI execute (~6 µs against ~30 µs through Core's execution layer).
        """
        if self.lookup is None:
            raise RuntimeError("point reads need the SQLite lookup connection")
        sql = str(query.compile(dialect=self.lookup.dialect))
        raw = self.lookup.connection.driver_connection
        if raw is None:
            raise RuntimeError("the lookup connection is closed")

        def read(value: Any) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = raw.execute(sql, (value,)).fetchone()
            return row

        return read

    def point_read_async(
        self, query: sa.Select[Any]
    ) -> Callable[[Any], Awaitable[tuple[Any, ...] | None]]:
        """PostgreSQL: `query` (one bound parameter) straight on asyncpg; see PointReads."""
        if self.fast is None:
            raise RuntimeError("async point reads need PostgreSQL")
        return self.fast.reader(str(query.compile(dialect=self.writer.dialect)))

    def peek(self, sql: str) -> Callable[[float], Awaitable[bool]]:
        """A function telling whether `sql` (one parameter, `?1` on SQLite, `$1` on
        PostgreSQL) finds a row: a read that takes no lock, on the connections of the
        hot point reads (SQLite's lookup connection, PostgreSQL's asyncpg pool)."""
        if self.lookup is not None:
            raw = self.lookup.connection.driver_connection
            if raw is None:
                raise RuntimeError("the lookup connection is closed")

            async def on_sqlite(value: float) -> bool:
                return raw.execute(sql, (value,)).fetchone() is not None

            return on_sqlite
        if self.fast is None:
            raise RuntimeError("peeks need SQLite's lookup connection or PostgreSQL")
        read = self.fast.reader(sql)

        async def on_postgresql(value: float) -> bool:
            return await read(value) is not None

        return on_postgresql

    async def dispose(self) -> None:
        if self.fast is not None:
            await self.fast.close()
        if self.lookup is not None:
            self.lookup.close()
            self.lookup.engine.dispose()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    async def upgrade(self) -> None:
        """Apply the Alembic migrations up to head; safe when several processes start at once.

        The upgrade takes a lock before Alembic looks at the schema, so concurrent
        upgrades take turns and the later ones find the schema current: on PostgreSQL
        a transaction-scoped advisory lock, on SQLite the writer's BEGIN IMMEDIATE.
        """
        if await self.revision() == HEAD_REVISION:
            return
        if self.dialect == "postgresql":
            lock = sa.text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_UPGRADE_LOCK)
        else:
            lock = sa.text("SELECT 1")  # the first statement begins IMMEDIATE
        async with self.writer.connect() as conn:
            await conn.execute(lock)
            await conn.run_sync(_upgrade)
            await conn.commit()

    async def revision(self) -> str | None:
        """The schema's Alembic revision; None for a database without one."""
        try:
            async with self.reader.connect() as conn:
                found = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        except sa.exc.DBAPIError:
            return None  # no such table yet
        return None if found is None else str(found)


class PointReads:
    """Hot point reads on PostgreSQL, straight on asyncpg with a small pool of its own.

    asyncpg prepares each statement once per connection; going around SQLAlchemy's
    pool (and its pre-ping round trip) and execution layer makes a status read
    several times cheaper. A read that meets a connection the server dropped (a
    restart, a failover) is tried once more on a fresh one.
    """

    def __init__(self, url: sa.URL, size: int) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    def reader(self, sql: str) -> Callable[[Any], Awaitable[tuple[Any, ...] | None]]:
        import asyncpg  # only PostgreSQL's processes load the driver

        async def read(value: Any) -> tuple[Any, ...] | None:
            pool = self._pool or await self._open()
            try:
                row = await pool.fetchrow(sql, value)
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
                row = await pool.fetchrow(sql, value)
            return None if row is None else tuple(row)

        return read

    def many_reader(self, sql: str) -> Callable[[list[Any]], Awaitable[list[tuple[Any, ...]]]]:
        """`sql` with one array parameter (`= ANY($1)`), answering rows; see `reader`."""
        import asyncpg

        async def read(values: list[Any]) -> list[tuple[Any, ...]]:
            pool = self._pool or await self._open()
            try:
                rows = await pool.fetch(sql, values)
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
                rows = await pool.fetch(sql, values)
            return [tuple(row) for row in rows]

        return read

    def rows_reader(self, sql: str) -> Callable[..., Awaitable[list[tuple[Any, ...]]]]:
        """`sql` with any parameters (`$1`, `$2`, …), answering its rows; see `reader`."""
        import asyncpg

        async def read(*values: Any) -> list[tuple[Any, ...]]:
            pool = self._pool or await self._open()
            try:
                rows = await pool.fetch(sql, *values)
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
                rows = await pool.fetch(sql, *values)
            return [tuple(row) for row in rows]

        return read

    async def _open(self) -> asyncpg.Pool:
        import asyncpg

        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._size,
                    server_settings={"application_name": "batgate"},
                    reset=_keep_session,
                )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """No reset between reads: they leave no session state behind, and asyncpg's
    default reset (RESET ALL, UNLISTEN *, …) is a second round trip per read."""


# The advisory lock key that serialises schema upgrades ("batgate" in ASCII).
_UPGRADE_LOCK = 0x62617467617465


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("batgate.store") / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_lookup(url: sa.URL) -> sa.Connection:
    engine = sa.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.StaticPool,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    # No mmap_size here: it saves a pread() per read (~5 % more lookups/s) but maps
    # the pages it touches into this process's RSS (+50 MB for 100,000 messages).
    return engine.connect()


def _switch_to_wal(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, which fails at once (no busy wait) while another
    connection switches a new file too: processes starting together on one file."""
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)


BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another process's lock


def _file_path(url: sa.URL) -> str | None:
    """The file of a plain `sqlite:///path` URL; None for memory databases and URIs."""
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:") or url.query:
        return None
    return path


def _sqlite_engine(url: sa.URL, *, writer: bool) -> AsyncEngine:
    # One writer connection: SQLite has one writer anyway, and queuing in the pool is
    # cheaper than spinning on SQLITE_BUSY. Readers run beside it thanks to WAL.
    path = _file_path(url) if writer else None
    inline = path is not None
    if inline:
        # The writer's statements on the event loop itself (store/inline_sqlite.py).
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            async_creator=lambda: InlineConnection.open(str(path), BUSY_TIMEOUT_S),
        )
    else:
        engine = create_async_engine(
            url,
            pool_size=1 if writer else 4,
            max_overflow=0,
            connect_args={"timeout": BUSY_TIMEOUT_S},
        )

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so BEGIN is ours (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The inline writer waits for another process's lock itself, off the loop.
        cursor.execute(f"PRAGMA busy_timeout={0 if inline else int(BUSY_TIMEOUT_S * 1000)}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that later
        # wants to write can fail with SQLITE_BUSY without waiting (other processes).
        conn.exec_driver_sql(begin)

    return engine
