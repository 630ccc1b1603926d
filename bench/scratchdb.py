"""The bench's databases: a SQLite file (a Path) or a PostgreSQL database (a URL).

PostgreSQL databases are made on the server named by `--postgres` (default the
local one: 127.0.0.1:5432, user postgres, trust auth), all named
``bgbench_<pid>_<name>``, and dropped when the run ends, Ctrl-C included.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from procs import BenchError
from psycopg import sql
from sqlalchemy.engine import make_url

Target = Path | str  # a SQLite file, or a postgresql:// URL
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url(db: Target) -> str:
    return f"sqlite:///{db}" if isinstance(db, Path) else db


def dialect(db: Target) -> str:
    return "sqlite" if isinstance(db, Path) else "postgresql"


@contextmanager
def connect(db: Target, *, readonly: bool = False) -> Iterator[Any]:
    """A DB-API connection in autocommit mode (psycopg) or SQLite's default mode."""
    if isinstance(db, Path):
        uri = f"file:{db}?mode=ro" if readonly else f"file:{db}"
        conn: Any = sqlite3.connect(uri, uri=True, timeout=30)
    else:
        conn = psycopg.connect(db, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def scalar(db: Target, query: str) -> Any:
    """The first column of the first row of `query` (no parameters: plain SQL)."""
    with connect(db, readonly=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


class Postgres:
    """Makes throwaway databases on one PostgreSQL server and drops them again."""

    def __init__(self, admin_url: str, prefix: str) -> None:
        self.admin_url = admin_url
        self.prefix = prefix  # bgbench_<pid>_
        self._made: list[str] = []

    def check(self) -> dict[str, Any]:
        """The server's version and the settings that matter here; BenchError if down."""
        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
                names = (
                    "server_version",
                    "shared_buffers",
                    "work_mem",
                    "effective_cache_size",
                    "max_connections",
                    "synchronous_commit",
                    "fsync",
                    "autovacuum",
                    "max_wal_size",
                    "random_page_cost",
                    "jit",
                )
                rows = conn.execute(
                    "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
                    (list(names),),
                ).fetchall()
                left = conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'bgbench\\_%'"
                ).fetchall()
        except psycopg.OperationalError as exc:
            raise BenchError(
                f"PostgreSQL at {self.display} does not answer ({exc}); "
                "scripts/ensure-postgres starts the local one"
            ) from exc
        settings = {n: s + (f" ({u})" if u else "") for n, s, u in rows}
        return {"url": self.display, "settings": settings, "leftover": [r[0] for r in left]}

    @property
    def display(self) -> str:
        return make_url(self.admin_url).render_as_string(hide_password=True)

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self, name: str, template: str | None = None) -> str:
        """A new database `<prefix><name>`, a copy of `template` (a URL or a database
        name) if given; its URL."""
        full = self.prefix + name
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(full))
        if template is not None:
            source = (make_url(template).database or "") if "://" in template else template
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(source))
        self._made.append(full)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(query)
        return self.url(full)

    def activity(self, url: str) -> dict[str, float]:
        """Connections ever made to the database and transactions ended in it
        (pg_stat_database: sessions, xact_commit + xact_rollback)."""
        name = make_url(url).database or ""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = %s",
                (name,),
            ).fetchone()
        if row is None:
            return {}
        return {"pg_sessions": float(row[0] or 0), "pg_transactions": float(row[1] or 0)}

    def drop(self, url: str) -> None:
        name = make_url(url).database or ""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self._made:
            self._made.remove(name)

    def drop_all(self) -> list[str]:
        """Drop every database this run made (those still there); the names dropped."""
        dropped = []
        for name in list(reversed(self._made)):
            with suppress(psycopg.Error):
                self.drop(self.url(name))
                dropped.append(name)
        return dropped
