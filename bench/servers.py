"""The servers under test: `batgate serve` on a scratch database, and the ceiling app."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from procs import LOCALHOST, BenchError, Child, Processes, free_port, rss_kib, wait_ready
from scratchdb import Target, database_url

SERVER_CPU = 1
CEILING_APP = Path(__file__).resolve().with_name("ceiling.py")


@dataclass
class Server:
    child: Child
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def rss_mb(self) -> float:
        return rss_kib(self.child.pid) / 1024


def batgate_argv() -> list[str]:
    script = Path(sys.executable).parent / "batgate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "batgate.cli.main"]


def base_env() -> dict[str, str]:
    """This environment without any BATGATE_* setting (every server starts from the
    defaults), and with the rate limit off: the bench is one account sending flat out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATGATE_")}
    env["BATGATE_RATE_LIMIT__ENABLED"] = "false"
    return env


def db_env(db: Target) -> dict[str, str]:
    return base_env() | {"BATGATE_DATABASE_URL": database_url(db)}


def create_account(db: Target, username: str = "bench", password: str | None = None) -> str:
    """`batgate accounts create USERNAME [--password …]` (which migrates the database
    first); the API key."""
    extra = [] if password is None else ["--password", password]
    out = subprocess.run(
        [*batgate_argv(), "accounts", "create", username, *extra],
        env=db_env(db),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"batgate accounts create failed:\n{out.stdout}\n{out.stderr}")
    return str(json.loads(out.stdout)["apiKey"])


class Servers:
    def __init__(self, procs: Processes, work: Path) -> None:
        self._procs = procs
        self._work = work

    @property
    def procs(self) -> Processes:
        return self._procs

    def new_db(self, name: str) -> tuple[Path, str]:
        """A fresh SQLite database with one account; its path and the account's API key."""
        db = self._work / f"{name}.db"
        return db, create_account(db)

    @contextmanager
    def batgate(
        self,
        name: str,
        db: Target,
        *,
        workers: bool,
        env: dict[str, str] | None = None,
        cpu: int = SERVER_CPU,
    ) -> Iterator[Server]:
        """`batgate serve` on a SQLite file or a PostgreSQL database, on the server CPU
        unless told otherwise, stopped when the block ends."""
        port = free_port()
        argv = [*batgate_argv(), "serve", "--port", str(port)]
        if not workers:
            argv.append("--no-workers")
        child = self._procs.start(name, argv, db_env(db) | (env or {}), cpu)
        try:
            server = Server(child, port)
            wait_ready(child, f"{server.url}/healthz")
            yield server
        finally:
            self._procs.stop(child)

    @contextmanager
    def worker(
        self, name: str, db: Target, env: dict[str, str] | None = None, cpu: int = SERVER_CPU
    ) -> Iterator[Child]:
        """`batgate worker` (the engine alone, beside `serve --no-workers`), ready once its
        metrics port answers; stopped when the block ends."""
        port = free_port()
        argv = [*batgate_argv(), "worker", "--metrics-port", str(port)]
        child = self._procs.start(name, argv, db_env(db) | (env or {}), cpu)
        try:
            wait_ready(child, f"http://{LOCALHOST}:{port}/healthz")
            yield child
        finally:
            self._procs.stop(child)

    @contextmanager
    def ceiling(self) -> Iterator[Server]:
        """bench/ceiling.py (a bare ASGI app) on the server CPU."""
        port = free_port()
        argv = [sys.executable, str(CEILING_APP), "--port", str(port)]
        child = self._procs.start("ceiling", argv, base_env(), SERVER_CPU)
        try:
            server = Server(child, port)
            wait_ready(child, f"{server.url}/")
            yield server
        finally:
            self._procs.stop(child)


def db_size_mb(db: Path) -> dict[str, float]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        size = path.stat().st_size if path.exists() else 0
        sizes[suffix.lstrip("-") or "db"] = round(size / 2**20, 1)
    return sizes


def count_messages(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        conn.close()
