"""Phase `optout`: the send path with a suppression list of 1,000,000 numbers beside
the same path with none (issue 18: at least 90 % of the rate).

Two `batgate serve --no-workers` processes on two fresh SQLite databases, the same
account and the same batches of 100 (numbers of the bench pool: none of them
suppressed, so both store every message and differ only by the list's lookup, one
per batch on the primary key), measured in rounds so that both see the same
machine. The million numbers are written straight into the table (a CLI import of
that size takes half a minute and measures nothing of interest here).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wrk
from procs import log
from report import Row

if TYPE_CHECKING:
    from phases import Bench

SUPPRESSED = 1_000_000
MIN_SHARE = 0.90
CONNECTIONS = 32


def suppress(db: Path, count: int) -> float:
    """Put `count` numbers (outside the bench pool's +38050…) on the bench account's
    list; seconds it took."""
    started = time.monotonic()
    with sqlite3.connect(db) as conn:
        (account_id,) = conn.execute("SELECT id FROM accounts WHERE username = 'bench'").fetchone()
        rows = ((account_id, f"+1202{i:07d}", "import", time.time()) for i in range(count))
        conn.executemany(
            "INSERT INTO suppressions (account_id, number, source, created_at) VALUES (?, ?, ?, ?)",
            rows,
        )
    return time.monotonic() - started


def run(bench: Bench) -> None:
    servers, script = bench.servers, bench.send_script
    bodies = bench.send_bodies_file()
    none_db, none_key = servers.new_db("optout-none")
    listed_db, listed_key = servers.new_db("optout-listed")
    seconds = suppress(listed_db, SUPPRESSED)
    log(f"optout: {SUPPRESSED:,} numbers suppressed in {seconds:.1f} s")
    with (
        servers.batgate("optout-none", none_db, workers=False) as plain,
        servers.batgate("optout-listed", listed_db, workers=False) as listed,
    ):
        loads = {
            "none": wrk.Load(
                f"{plain.url}/bat/messagelist", script, [str(bodies), none_key], CONNECTIONS
            ),
            "listed": wrk.Load(
                f"{listed.url}/bat/messagelist", script, [str(bodies), listed_key], CONNECTIONS
            ),
        }
        m = bench.measure(loads)
    share = m["listed"].rps / m["none"].rps if m["none"].rps else 0.0
    ok = share >= MIN_SHARE
    doc: dict[str, Any] = {
        "suppressed": SUPPRESSED,
        "batch": 100,
        "connections": CONNECTIONS,
        "none": m["none"].to_json() | {"messages_per_s": round(m["none"].rps * 100)},
        "listed": m["listed"].to_json() | {"messages_per_s": round(m["listed"].rps * 100)},
        "share": round(share, 3),
        "ok": ok,
    }
    bench.results.doc["optout"] = doc
    bench.results.rows.append(
        Row(
            f"send with {SUPPRESSED:,} suppressed numbers, 100/request (SQLite)",
            f"{m['listed'].rps * 100:,.0f} msg/s = {share:.0%} of "
            f"{m['none'].rps * 100:,.0f} with none",
            f"{m['listed'].p50_ms:.1f} ms",
            f"{m['listed'].p99_ms:.1f} ms",
            f"≥ {MIN_SHARE:.0%}",
            ok,
        )
    )
    log(f"optout: {share:.1%} of the rate without a list")
