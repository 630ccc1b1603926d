"""Throwaway databases for the tests: a SQLite file, or a PostgreSQL database of this run.

Every integration and end-to-end test runs on each backend in `BACKENDS`
(environment `BATGATE_TEST_BACKENDS`, default ``sqlite,postgresql``). PostgreSQL
databases are cloned from a template migrated once per run, named
``bgtest_<run>_<n>``, and dropped when the run ends (`Databases.drop_all`).
The server is `BATGATE_TEST_POSTGRES` (default: the local one, database `test`);
`make test` starts it first when it is not running (scripts/ensure-postgres).

`Raw` looks behind the store in tests with plain SQL on either backend; write
the SQL with ``?`` placeholders.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

BACKENDS: tuple[str, ...] = tuple(
    b.strip() for b in os.environ.get("BATGATE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b
)
POSTGRES = os.environ.get("BATGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _admin() -> psycopg.Connection[Any]:
    url = make_url(POSTGRES)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    )


class Databases:
    """Makes databases for one test run and drops them at its end.

    DROP DATABASE makes PostgreSQL checkpoint (about half a second on a quiet
    machine, much more on a busy one), so the databases of single tests are not
    dropped but recycled: `lease` hands out one emptied with TRUNCATE.
    """

    def __init__(self) -> None:
        self._run = f"{os.getpid()}_{os.urandom(2).hex()}"
        self._numbers = itertools.count(1)
        self._made: list[str] = []
        self._template: str | None = None
        self._free: list[str] = []

    @contextmanager
    def lease(self, backend: str, directory: Path) -> Iterator[str]:
        """A fresh migrated database for one test; a PostgreSQL one is recycled afterwards."""
        if backend != "postgresql" or not self._free:
            url = self.url(backend, directory)
        else:
            url = self._free.pop()
            _empty(url)
        try:
            yield url
        finally:
            if backend == "postgresql":
                self._free.append(url)

    def url(self, backend: str, directory: Path, *, migrated: bool = True) -> str:
        """A fresh database of `backend`; SQLite's file (made when first used) is in `directory`.

        A PostgreSQL one is migrated already unless `migrated` is false (then it is empty).
        """
        if backend == "sqlite":
            return f"sqlite:///{directory / f'batgate-{next(self._numbers)}.db'}"
        if backend != "postgresql":
            raise ValueError(f"unknown test backend {backend!r}")
        name = f"bgtest_{self._run}_{next(self._numbers)}"
        template = self._migrated_template() if migrated else "template0"
        with _admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._made.append(name)
        return _database_url(name)

    def _migrated_template(self) -> str:
        if self._template is None:
            import asyncio
            import threading

            from batgate.store.database import Database

            name = f"bgtest_{self._run}_template"
            with _admin() as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            self._made.append(name)

            async def migrate() -> None:
                database = Database.connect(_database_url(name))
                try:
                    await database.upgrade()
                finally:
                    await database.dispose()

            # In a thread of its own: the caller's may run an event loop already (a
            # Playwright browser's, in the console's tests), and asyncio.run cannot nest.
            failed: list[BaseException] = []

            def run() -> None:
                try:
                    asyncio.run(migrate())
                except BaseException as exc:  # handed to the caller's thread
                    failed.append(exc)

            thread = threading.Thread(target=run, name="migrate-template")
            thread.start()
            thread.join()
            if failed:
                raise failed[0]
            self._template = name
        return self._template

    def drop_all(self) -> None:
        if not self._made:
            return
        with _admin() as admin:
            for name in reversed(self._made):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()


def _empty(url: str) -> None:
    """Disconnect everyone from the database and empty every table but Alembic's."""
    name = make_url(url).database
    with _admin() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    with raw_connection(url) as raw:
        tables = [t for t, _, _ in raw.schema() if t != "alembic_version"]
        raw.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def _database_url(name: str) -> str:
    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)


class Raw:
    """Plain SQL against a test database, outside the store, in autocommit."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        driver = (
            "sqlite+pysqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
        )
        self.backend = parsed.get_backend_name()
        self._engine = sa.create_engine(
            parsed.set(drivername=driver), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        self._conn = self._engine.connect()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sa.CursorResult[Any]:
        if self.backend != "sqlite":
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self._conn.exec_driver_sql(sql, tuple(params))

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).scalar()

    def schema(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """Every table with its columns and index names, sorted."""
        inspector = sa.inspect(self._conn)
        return sorted(
            (
                table,
                tuple(c["name"] for c in inspector.get_columns(table)),
                tuple(sorted(str(i["name"]) for i in inspector.get_indexes(table))),
            )
            for table in inspector.get_table_names()
        )

    def schema_diff(self, metadata: sa.MetaData) -> list[Any]:
        """What Alembic's autogenerate would change to make the database match `metadata`."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        diff: list[Any] = compare_metadata(MigrationContext.configure(self._conn), metadata)
        return diff

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


@contextmanager
def raw_connection(url: str) -> Iterator[Raw]:
    raw = Raw(url)
    try:
        yield raw
    finally:
        raw.close()
