"""A big database's size, its query plans, and its backup: figures for the operators.

- sizes: each table's rows, heap, indexes and total (PostgreSQL's size
  functions; SQLite's dbstat table), and bytes per message all in;
- plans: batgate's own statements (the claim, the status read, …) compiled as
  the store sends them, explained and timed on the big database;
- backup: `pg_dump -Fc` and `pg_restore -j 2` (PostgreSQL), the online backup
  API (SQLite), each timed, with the file's size.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from procs import BenchError, log
from psycopg import sql
from scratchdb import Postgres, Target, connect, dialect
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.engine import make_url

from batgate.store import dialects
from batgate.store.schema import accounts, message_events, messages

TABLES = ("messages", "message_events", "messagelists")
TIMED_EXECUTIONS = 20
_TIME_BUDGET_S = 5.0
CLAIM_BATCH = 200  # DispatcherSettings.batch_size and WebhookSettings.batch_size

# -- sizes ---------------------------------------------------------------------

_PG_TABLES = """
SELECT c.relname, pg_relation_size(c.oid), pg_table_size(c.oid), pg_indexes_size(c.oid),
       pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
"""
_PG_INDEXES = """
SELECT t.relname, i.relname, pg_relation_size(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'
"""


def sizes(db: Target) -> dict[str, Any]:
    """Rows and bytes of each of batgate's big tables, and of the whole database."""
    tables: dict[str, dict[str, Any]] = {}
    with connect(db, readonly=True) as conn:
        for table in TABLES:
            tables[table] = {
                "rows": int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            }
        if dialect(db) == "postgresql":
            database = _pg_sizes(conn, tables)
        else:
            database = _sqlite_sizes(conn, tables, Path(db))
    n = tables["messages"]["rows"]
    all_in = sum(t["total_bytes"] for name, t in tables.items() if name in TABLES)
    return {
        "tables": tables,
        "database_bytes": database,
        "three_tables_bytes": all_in,
        "bytes_per_message": round(all_in / n) if n else None,
        "database_bytes_per_message": round(database / n) if n else None,
    }


def _pg_sizes(conn: Any, tables: dict[str, dict[str, Any]]) -> int:
    for name, heap, table, indexes, total in conn.execute(_PG_TABLES):
        if name in tables:
            tables[name] |= {
                "heap_bytes": heap,
                "table_bytes": table,  # heap + TOAST + free-space and visibility maps
                "index_bytes": indexes,
                "total_bytes": total,
                "indexes": {},
            }
    for table, index, size in conn.execute(_PG_INDEXES):
        if table in tables:
            tables[table]["indexes"][index] = size
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def _sqlite_sizes(conn: Any, tables: dict[str, dict[str, Any]], path: Path) -> int:
    owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
    for name in tables:
        tables[name] |= {"heap_bytes": 0, "index_bytes": 0, "total_bytes": 0, "indexes": {}}
    for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        if table not in tables:
            continue
        if name in owner:
            tables[table]["indexes"][name] = size
            tables[table]["index_bytes"] += size
        else:
            tables[table]["heap_bytes"] = size
        tables[table]["total_bytes"] += size
    for entry in tables.values():
        entry["table_bytes"] = entry["heap_bytes"]
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# -- plans ---------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    name: str
    what: str
    statement: sa.Executable
    expect_index: str | None = None


def probes(kind: str, message_id: str, list_id: int) -> list[Probe]:
    """batgate's statements worth a plan, built as the store builds them."""
    now = time.time()
    return [
        Probe(
            "claim_due",
            "dispatcher: claim due messages (store/dialects.py claim_due)",
            dialects.claim_due(kind, "bench-explain", now, now + 60, CLAIM_BATCH),
            "ix_messages_due",
        ),
        Probe(
            "status_read",
            "status lookup by id (store/manager.py _BY_ID)",
            sa.select(messages).where(messages.c.id == message_id),
        ),
        Probe(
            "claim_webhooks",
            "webhook sender: claim due events (store/dialects.py claim_webhooks)",
            dialects.claim_webhooks(kind, "bench-explain", now, now + 60, CLAIM_BATCH),
            "ix_message_events_pending",
        ),
        Probe(
            "messagelist_summary",
            "GET /bat/messagelist/{id}: counts per status (Store.messagelist_summary)",
            sa.select(
                messages.c.status,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(messages.c.bill_micros), 0),
            )
            .where(messages.c.messagelist_id == list_id)
            .group_by(messages.c.status),
            "ix_messages_messagelist",
        ),
        Probe(
            "message_history",
            "a message's events (Store.events_of)",
            sa.select(message_events.c.status, message_events.c.at)
            .where(message_events.c.message_id == message_id)
            .order_by(message_events.c.id),
            "ix_message_events_message",
        ),
        Probe(
            "webhook_events_view",
            "`batgate webhooks events`: the last 100 webhook events (Outbox.events)",
            sa.select(message_events, accounts.c.username)
            .join(accounts, accounts.c.id == message_events.c.account_id)
            .where(message_events.c.state != "none")
            .order_by(message_events.c.id.desc())
            .limit(100),
        ),
    ]


# "Index Scan using ix", "Index Only Scan using ix", "Bitmap Index Scan on ix" (PostgreSQL);
# "USING INDEX ix", "USING COVERING INDEX ix", "USING INTEGER PRIMARY KEY" (SQLite).
_INDEX_USE = re.compile(
    r"Index (?:Only )?Scan using (\w+)|Bitmap Index Scan on (\w+)"
    r"|USING (?:COVERING )?INDEX (\w+)|USING (INTEGER PRIMARY KEY)"
)


def indexes_in(plan: str) -> list[str]:
    """The indexes a plan reads."""
    return sorted({next(g for g in m.groups() if g) for m in _INDEX_USE.finditer(plan)})


def plans(db: Target, message_id: str, list_id: int) -> dict[str, Any]:
    """Each probe's plan (PostgreSQL: EXPLAIN ANALYZE, custom and generic; SQLite:
    EXPLAIN QUERY PLAN) and its time, median of up to TIMED_EXECUTIONS runs; writes
    are rolled back."""
    kind = dialect(db)
    out: dict[str, Any] = {}
    with connect(db) as conn:
        for probe in probes(kind, message_id, list_id):
            if kind == "postgresql":
                entry = _pg_probe(conn, probe)
            else:
                entry = _sqlite_probe(conn, probe)
            text = entry["plan"]
            entry["indexes_used"] = indexes_in(text)
            entry["full_scan"] = _full_scan(kind, text)
            if probe.expect_index is not None:
                entry["expected_index"] = probe.expect_index
                entry["uses_expected_index"] = probe.expect_index in entry["indexes_used"]
                if "generic_plan" in entry:
                    entry["generic_uses_expected_index"] = probe.expect_index in indexes_in(
                        entry["generic_plan"]
                    )
            out[probe.name] = {"what": probe.what} | entry
            log(f"plans: {probe.name}: {entry['median_ms']:.2f} ms{_flag(entry)}")
    return out


def _flag(entry: dict[str, Any]) -> str:
    if (
        entry.get("uses_expected_index") is False
        or entry.get("generic_uses_expected_index") is False
    ):
        return f" — does NOT use {entry['expected_index']} (custom or generic plan)"
    return " — full scan" if entry["full_scan"] else ""


def _full_scan(kind: str, plan: str) -> bool:
    big = "|".join(TABLES)
    if kind == "postgresql":
        return re.search(rf"Seq Scan on ({big})\b", plan) is not None
    return re.search(rf"SCAN ({big})\b(?! USING)", plan) is not None


def _positional(statement: sa.Executable, dialect_: Any) -> tuple[str, list[Any]]:
    compiled = statement.compile(dialect=dialect_)  # type: ignore[attr-defined]
    return str(compiled), [compiled.params[k] for k in compiled.positiontup or ()]


def _pg_probe(conn: Any, probe: Probe) -> dict[str, Any]:
    # As asyncpg gets it from SQLAlchemy ($1::FLOAT …) and prepares it: the plan of the
    # prepared statement, custom (for these values) and generic (any values).
    text, params = _positional(probe.statement, asyncpg.dialect())
    args = sql.SQL(", ").join(sql.Literal(p) for p in params).as_string(conn)
    execute = f"EXECUTE bench_probe({args})" if params else "EXECUTE bench_probe"
    conn.execute(f"PREPARE bench_probe AS {text}")
    try:
        found: dict[str, Any] = {}
        for mode in ("force_custom_plan", "force_generic_plan"):
            with conn.transaction(force_rollback=True):
                conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {execute}").fetchall()
            found[mode] = "\n".join(r[0] for r in rows)
        times = _timed(lambda: _pg_once(conn, execute))
    finally:
        conn.execute("DEALLOCATE bench_probe")
    generic = found["force_generic_plan"]
    return {
        "sql": text,
        "plan": found["force_custom_plan"],
        "generic_plan": generic,
        "generic_plan_differs": _shape(generic) != _shape(found["force_custom_plan"]),
        **times,
    }


def _shape(plan: str) -> list[str]:
    """A plan without its figures: the nodes and what they scan."""
    return [re.sub(r"\s*\(.*", "", line).strip() for line in plan.splitlines() if "->" in line]


def _pg_once(conn: Any, execute: str) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(execute).fetchall()


def _sqlite_probe(conn: Any, probe: Probe) -> dict[str, Any]:
    text, params = _positional(probe.statement, sqlite.dialect())
    conn.isolation_level = None
    rows = conn.execute(f"EXPLAIN QUERY PLAN {text}", params).fetchall()
    plan = "\n".join(f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows)
    write = text.lstrip().upper().startswith("UPDATE")

    def once() -> None:
        with _sqlite_rollback(conn, write):
            conn.execute(text, params).fetchall()

    return {"sql": text, "plan": plan, **_timed(once)}


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


@contextmanager
def _sqlite_rollback(conn: sqlite3.Connection, write: bool) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def _timed(run: Any) -> dict[str, Any]:
    took: list[float] = []
    started = time.monotonic()
    for _ in range(TIMED_EXECUTIONS):
        t0 = time.perf_counter()
        run()
        took.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() - started > _TIME_BUDGET_S and len(took) >= 3:
            break
    return {
        "median_ms": round(statistics.median(took), 3),
        "max_ms": round(max(took), 3),
        "executions": len(took),
    }


# -- backups -------------------------------------------------------------------


def _pg_tool(name: str, server_major: int) -> tuple[str, str]:
    """The client tool matching the server's major version when installed; its version."""
    candidates = [f"/usr/lib/postgresql/{server_major}/bin/{name}", shutil.which(name) or ""]
    path = next((c for c in candidates if c and Path(c).exists()), None)
    if path is None:
        raise BenchError(f"{name} is not installed")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    return path, out.stdout.strip()


def pg_backup(postgres: Postgres, db: str, work: Path) -> dict[str, Any]:
    """`pg_dump -Fc` of `db` into the scratch directory, then `pg_restore -j 2` of it
    into a fresh database; times and sizes. Problems are reported, not raised."""
    with connect(db, readonly=True) as conn:
        server = str(conn.execute("SHOW server_version").fetchone()[0])
    major = int(server.split(".")[0])
    dump_path, dump_version = _pg_tool("pg_dump", major)
    restore_path, _ = _pg_tool("pg_restore", major)
    out: dict[str, Any] = {"server_version": server, "pg_dump": dump_version}
    client_major = re.search(r"\)\s*(\d+)", dump_version)
    if client_major is None or int(client_major.group(1)) != major:
        out["version_note"] = f"pg_dump is {dump_version}, the server {server}"
    file = work / "bench.dump"
    log(f"backup: pg_dump -Fc of {_name(db)}")
    took = _run([dump_path, "-Fc", "-f", str(file), "--dbname", db])
    if "error" in took:
        return out | {"pg_dump_error": took["error"]}
    out |= {"dump_seconds": took["seconds"], "dump_bytes": file.stat().st_size}
    target = postgres.create("restored", template="template0")
    log("backup: pg_restore -j 2 into a fresh database")
    took = _run([restore_path, "-j", "2", "--no-owner", "--dbname", target, str(file)])
    if "error" in took:
        out["restore_error"] = took["error"]
    else:
        with connect(target, readonly=True) as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        out |= {"restore_seconds": took["seconds"], "restored_database_bytes": int(size)}
    postgres.drop(target)
    file.unlink()
    return out


def pg_archive(db: str, work: Path, share: float = 0.2) -> dict[str, Any]:
    """Archiving the oldest `share` of the messages the way one must without
    partitions: COPY them and their events out, DELETE them, VACUUM. Times, bytes,
    WAL written, and the tables' size before and after (the space stays in the files
    for new rows; only VACUUM FULL or a partition drop gives it back)."""
    out: dict[str, Any] = {"share": share}
    with connect(db) as conn:
        total = int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        skip = int(total * share)
        cutoff = conn.execute(f"SELECT id FROM messages ORDER BY id OFFSET {skip} LIMIT 1")
        cut = str(cutoff.fetchone()[0])
        out |= {"messages": skip, "size_before": _two_tables(conn)}
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        started = time.monotonic()
        exported = 0
        with (work / "archive.copy").open("wb") as file:
            for table, column in (("messages", "id"), ("message_events", "message_id")):
                query = f"COPY (SELECT * FROM {table} WHERE {column} < '{cut}') TO STDOUT"
                with conn.cursor().copy(query) as copy:
                    for chunk in copy:
                        exported += file.write(chunk)
        out |= {"export_seconds": round(time.monotonic() - started, 1), "export_bytes": exported}
        (work / "archive.copy").unlink()
        log(f"archive: deleting the oldest {skip:,} messages and their events")
        started = time.monotonic()
        with conn.transaction():
            conn.execute(f"DELETE FROM message_events WHERE message_id < '{cut}'")
            conn.execute(f"DELETE FROM messages WHERE id < '{cut}'")
        out["delete_seconds"] = round(time.monotonic() - started, 1)
        wal = conn.execute(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')").fetchone()
        out["delete_wal_bytes"] = int(wal[0])
        started = time.monotonic()
        conn.execute("VACUUM messages, message_events")
        out["vacuum_seconds"] = round(time.monotonic() - started, 1)
        out["size_after_vacuum"] = _two_tables(conn)
    return out


def _two_tables(conn: Any) -> int:
    row = conn.execute(
        "SELECT pg_total_relation_size('messages') + pg_total_relation_size('message_events')"
    ).fetchone()
    return int(row[0])


def sqlite_backup(db: Path, work: Path) -> dict[str, Any]:
    """A copy through SQLite's online backup API (what `sqlite3 db .backup` does)."""
    copy = work / "backup.db"
    started = time.monotonic()
    with connect(db, readonly=True) as src:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst, pages=4096)
        finally:
            dst.close()
    seconds = time.monotonic() - started
    size = copy.stat().st_size
    copy.unlink()
    return {"backup_seconds": round(seconds, 1), "backup_bytes": size}


def _name(url: str) -> str:
    return make_url(url).database or url


def _run(argv: list[str]) -> dict[str, Any]:
    started = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=7200, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip()[-2000:]}
    return {"seconds": round(time.monotonic() - started, 1)}
