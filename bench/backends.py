"""SQLite and PostgreSQL behind one face for the phases that run on both.

A backend makes fresh databases with the bench account, copies one database
into another (PostgreSQL: CREATE DATABASE … TEMPLATE; SQLite: the online backup
API), and keeps one database of delivered messages that the phases start from:
10,000 messages sent through the API and delivered by the engine, so every row
is one batgate itself wrote.
"""

from __future__ import annotations

import sqlite3
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cpu
import seeding
from procs import log
from scratchdb import Postgres, Target, connect
from servers import Servers, create_account

BASE_MESSAGES = 10_000
_BATCH = 100


@dataclass(frozen=True)
class Delivered:
    """A database holding `messages` delivered messages, and how long they took."""

    db: Target
    key: str
    messages: int
    seed_per_s: float
    final_after_s: float
    writes: dict[str, dict[str, int]]  # PostgreSQL: rows inserted, updated (HOT), dead


class Backend(ABC):
    name: str  # "sqlite" or "postgresql", as in --database
    label: str  # for people

    def __init__(self, servers: Servers) -> None:
        self.servers = servers
        self._delivered: Delivered | None = None

    @abstractmethod
    def new_db(self, name: str) -> tuple[Target, str]:
        """A fresh, migrated database with the bench account; the account's API key."""

    @abstractmethod
    def copy(self, source: Target, name: str) -> Target:
        """A copy of `source` (no server may be using it)."""

    @property
    def postgres_marker(self) -> str | None:
        """What PostgreSQL's process titles of this run's backends contain (cpu.py)."""
        return None

    def analyze(self, db: Target) -> float:
        """Refresh the planner's statistics (PostgreSQL); seconds taken."""
        return 0.0

    def watch(self, api: list[int], db: Target) -> cpu.Watch:
        """What each timed run against `db` records (cpu.py)."""
        return cpu.Watch(api)

    def delivered(self, pool: list[str]) -> Delivered:
        """The database of BASE_MESSAGES delivered messages (made once, then copied)."""
        if self._delivered is None:
            db, key = self.new_db("delivered")
            bodies = seeding.send_bodies(pool, _BATCH)
            log(f"{self.label}: sending {BASE_MESSAGES:,} messages, engine on, until all final")
            with self.servers.batgate(f"{self.name}-delivered", db, workers=True) as server:
                seeded = seeding.seed(server.url, key, bodies, BASE_MESSAGES // _BATCH)
                final_s = seeding.wait_final(db, timeout=900)
            total_s = seeded.seconds + final_s
            log(f"{self.label}: {seeded.accepted:,} delivered {total_s:.0f} s after the first send")
            self._delivered = Delivered(
                db, key, seeded.accepted, seeded.per_second, round(total_s, 1), self.writes(db)
            )
        return self._delivered

    def writes(self, db: Target) -> dict[str, dict[str, int]]:
        """What writing the rows cost, per table (PostgreSQL's statistics)."""
        return {}


class SqliteBackend(Backend):
    name = "sqlite"
    label = "SQLite"

    def __init__(self, servers: Servers, work: Path) -> None:
        super().__init__(servers)
        self.work = work

    def new_db(self, name: str) -> tuple[Target, str]:
        return self.servers.new_db(f"{self.name}-{name}")

    def copy(self, source: Target, name: str) -> Target:
        target = self.work / f"{self.name}-{name}.db"
        with connect(source) as src:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")  # as batgate keeps it
            finally:
                dst.close()
        return target


class PostgresBackend(Backend):
    name = "postgresql"
    label = "PostgreSQL"

    def __init__(self, servers: Servers, postgres: Postgres) -> None:
        super().__init__(servers)
        self.postgres = postgres
        self._template: tuple[str, str] | None = None

    def new_db(self, name: str) -> tuple[Target, str]:
        if self._template is None:  # migrated once, with the account; copied from then on
            url = self.postgres.create("template")
            self._template = url, create_account(url)
        url, key = self._template
        return self.postgres.create(name, template=url), key

    def copy(self, source: Target, name: str) -> Target:
        return self.postgres.create(name, template=str(source))

    @property
    def postgres_marker(self) -> str | None:
        return f" {self.postgres.prefix}"

    def watch(self, api: list[int], db: Target) -> cpu.Watch:
        # Connections opened per second (SQLAlchemy's pool, 10 + 10 overflow, closes
        # overflow connections it gets back while 10 are idle, and opens them again)
        # and transactions per second (per request: how many a request costs).
        def counters() -> dict[str, float]:
            return self.postgres.activity(str(db))

        return cpu.Watch(api, self.postgres_marker, counters=counters)

    def writes(self, db: Target) -> dict[str, dict[str, int]]:
        # Read after the server stopped: its backends flushed their statistics on exit.
        with connect(db, readonly=True) as conn:
            rows = conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup "
                "FROM pg_stat_user_tables WHERE relname IN ('messages', 'message_events')"
            ).fetchall()
        keys = ("inserted", "updated", "hot_updated", "dead")
        return {name: dict(zip(keys, map(int, values), strict=True)) for name, *values in rows}

    def analyze(self, db: Target) -> float:
        started = time.monotonic()
        with connect(db) as conn:
            conn.execute("VACUUM ANALYZE")
        return time.monotonic() - started
