"""Status lookups on 10,000 vs millions of stored messages; the big database's size,
plans and backup.

Two copies of the database of 10,000 delivered messages (backends.Delivered):
one stays small, the other grows to `--big-messages` (cloning.py). PostgreSQL
then gets VACUUM ANALYZE on both (autovacuum would have; the bench's server may
run without it). A `--no-workers` server with the status cache off (every
lookup reads the database) serves each; wrk asks both, in rounds, for random
ids: all 10,000 of the small one, a uniform sample of the big one. Then 1,000
messages are sent to the big one, due now (no engine runs), so the claim's plan
sees a few due among millions; the plans, the sizes and the backup follow.
"""

from __future__ import annotations

import statistics
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloning
import scaleout
import seeding
import sizing
import wrk
from backends import BASE_MESSAGES, Backend, PostgresBackend
from procs import log
from report import Row
from scratchdb import Target, connect, dialect

if TYPE_CHECKING:
    from phases import Bench

STATUS_CONNECTIONS = 64
ID_SAMPLE = 200_000
DUE_BATCHES = 10  # 1,000 messages due when the plans are taken
MAX_P99_RATIO = 1.5


def run(bench: Bench, backend: Backend) -> None:
    n = bench.opts.big_messages
    base = backend.delivered(bench.pool)
    small = backend.copy(base.db, "size-small")
    big = backend.copy(base.db, "size-big")
    log(f"{backend.label} size: growing a copy to {n:,} messages")
    grown = cloning.grow(big, n)
    analyze = {"small_s": round(backend.analyze(small), 1), "big_s": round(backend.analyze(big), 1)}
    ids_small = bench.work / f"{backend.name}-size-ids-small.txt"
    ids_big = bench.work / f"{backend.name}-size-ids-big.txt"
    cloning.sample_ids(small, BASE_MESSAGES, ids_small)
    sampled = cloning.sample_ids(big, min(ID_SAMPLE, n), ids_big)
    sizes = sizing.sizes(big)
    env = {"BATGATE_STATUS_CACHE_SIZE": "0"}
    dbs = {"small": small, "big": big}
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                bench.servers.batgate(f"{backend.name}-size-{name}", db, workers=False, env=env)
            )
            for name, db in dbs.items()
        }
        paths = {"small": ids_small, "big": ids_big}
        loads = {
            name: wrk.Load(
                f"{server.url}/bat/message/",
                bench.status_script,
                [str(paths[name]), base.key, "random", "0"],
                STATUS_CONNECTIONS,
                watch=backend.watch([server.child.pid], dbs[name]),
            )
            for name, server in servers.items()
        }
        log(f"{backend.label} size: status lookups, {BASE_MESSAGES:,} vs {n:,} stored")
        reads_before = {name: _block_reads(db) for name, db in (("small", small), ("big", big))}
        m = bench.measure(loads)
        reads = {
            name: _reads_between(reads_before[name], _block_reads(db))
            for name, db in (("small", small), ("big", big))
        }
        bodies = seeding.send_bodies(bench.pool, 100)
        seeding.seed(servers["big"].url, base.key, bodies, DUE_BATCHES)
        probe_id = ids_big.read_text().split("\n", 1)[0]
        plans = sizing.plans(big, probe_id, _list_of(big, probe_id))
    backup: dict[str, Any] = {}
    archive: dict[str, Any] = {}
    if isinstance(backend, PostgresBackend):
        backup = sizing.pg_backup(backend.postgres, str(big), bench.work)
        archive = sizing.pg_archive(str(big), bench.work)  # last: it deletes a fifth
    elif isinstance(big, Path):
        backup = sizing.sqlite_backup(big, bench.work)
    doc: dict[str, Any] = {
        "messages": n,
        "base_messages": BASE_MESSAGES,
        "grown": grown,
        "analyze": analyze,
        "ids_sampled": sampled,
        "sizes": sizes,
        "plans": plans,
        "backup": backup,
        "archive": archive,
        "delivered_writes": base.writes,
        "due_messages_for_plans": DUE_BATCHES * 100,
    }
    doc |= _lookup_rows(bench, backend, m, reads, n)
    _size_rows(bench, backend, doc)
    bench.results.doc[f"{backend.name}_size"] = doc


def _block_reads(db: Target) -> tuple[int, int] | None:
    """PostgreSQL's shared-buffer hits and reads (from the OS or disk) so far."""
    if dialect(db) != "postgresql":
        return None
    with connect(db, readonly=True) as conn:
        hit, read = conn.execute(
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(hit), int(read)


def _reads_between(
    before: tuple[int, int] | None, after: tuple[int, int] | None
) -> dict[str, Any] | None:
    if before is None or after is None:
        return None
    hit, read = after[0] - before[0], after[1] - before[1]
    return {"blocks_hit": hit, "blocks_read": read, "hit_share": round(hit / max(1, hit + read), 4)}


def _list_of(db: Target, message_id: str) -> int:
    with connect(db, readonly=True) as conn:
        row = conn.execute(f"SELECT messagelist_id FROM messages WHERE id = '{message_id}'")
        return int(row.fetchone()[0])


def _lookup_rows(
    bench: Bench,
    backend: Backend,
    m: dict[str, wrk.Measurement],
    reads: dict[str, dict[str, Any] | None],
    n: int,
) -> dict[str, Any]:
    small, big = m["small"], m["big"]
    # Ratios within rounds (the two ran a few seconds apart), then their median.
    p99_ratio = statistics.median(
        b["p99_ms"] / s["p99_ms"] for b, s in zip(big.runs, small.runs, strict=True)
    )
    rps_ratio = statistics.median(
        b["rps"] / s["rps"] for b, s in zip(big.runs, small.runs, strict=True)
    )
    ok = p99_ratio <= MAX_P99_RATIO
    for name, r, stored in (("small", small, BASE_MESSAGES), ("big", big, n)):
        hits = reads[name]
        result = f"{r.rps:,.0f} req/s [{r.rps_min:,.0f}–{r.rps_max:,.0f}]"
        if name == "big":
            result += f", ×{rps_ratio:.2f} req/s and ×{p99_ratio:.2f} p99 of {BASE_MESSAGES:,}"
        if hits is not None:
            result += f"; {hits['hit_share']:.1%} of blocks from shared buffers"
        result += scaleout.transactions_text(r.cpu, r.rps)
        bench.results.rows.append(
            Row(
                f"{backend.label} status (cache 0), {stored:,} messages stored, 64 conns",
                result,
                f"{r.p50_ms:.1f} ms",
                f"{r.p99_ms:.1f} ms",
                f"p99 ≤ {MAX_P99_RATIO}× of {BASE_MESSAGES:,}" if name == "big" else "",
                ok if name == "big" else None,
            )
        )
    log(f"{backend.label} size: p99 {small.p99_ms:.1f} → {big.p99_ms:.1f} ms (×{p99_ratio:.2f})")
    return {
        "small": small.to_json() | {"block_reads": reads["small"]},
        "big": big.to_json() | {"block_reads": reads["big"]},
        "p99_ratio": round(p99_ratio, 3),
        "rps_ratio": round(rps_ratio, 3),
        "p99_ok": ok,
    }


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def _size_rows(bench: Bench, backend: Backend, doc: dict[str, Any]) -> None:
    s, n, g = doc["sizes"], doc["messages"], doc["grown"]
    t = s["tables"]
    bench.results.rows.append(
        Row(
            f"{backend.label}: {n:,} messages stored, size",
            f"{_mb(s['three_tables_bytes'])} in messages + events + lists, "
            f"{s['bytes_per_message']:,} B/message (messages {_mb(t['messages']['total_bytes'])}"
            f" of which indexes {_mb(t['messages']['index_bytes'])}; events "
            f"{_mb(t['message_events']['total_bytes'])}); database {_mb(s['database_bytes'])}; "
            f"{g['copies']:,} copies written in {g['seconds']:.0f} s "
            f"({g['copies_per_s']:,}/s), ANALYZE {doc['analyze']['big_s']:.0f} s",
        )
    )
    b = doc["backup"]
    if "dump_seconds" in b:
        text = f"pg_dump -Fc {b['dump_seconds']:.0f} s, {_mb(b['dump_bytes'])}"
        if "restore_seconds" in b:
            text += f"; pg_restore -j 2 {b['restore_seconds']:.0f} s"
            text += f" (restored database {_mb(b['restored_database_bytes'])})"
        text += f"; {b.get('version_note', b['pg_dump'])}"
    elif "backup_seconds" in b:
        text = f"online backup API {b['backup_seconds']:.0f} s, {_mb(b['backup_bytes'])}"
    else:
        text = f"failed: {b}"
    bench.results.rows.append(Row(f"{backend.label}: backup of the {n:,}-message database", text))
    a = doc["archive"]
    if a:
        bench.results.rows.append(
            Row(
                f"{backend.label}: archive the oldest {a['messages']:,} without partitions",
                f"COPY out {a['export_seconds']:.0f} s ({_mb(a['export_bytes'])}); DELETE "
                f"{a['delete_seconds']:.0f} s ({_mb(a['delete_wal_bytes'])} of WAL); VACUUM "
                f"{a['vacuum_seconds']:.0f} s; messages + events {_mb(a['size_before'])} before, "
                f"{_mb(a['size_after_vacuum'])} after",
            )
        )
    for name in ("claim_due", "status_read"):
        p = doc["plans"][name]
        uses = ", ".join(p["indexes_used"]) or "no index"
        result = f"{p['median_ms']:.2f} ms (median of {p['executions']}); {uses}"
        if p["full_scan"]:
            result += "; FULL SCAN"
        expected = p.get("expected_index")
        ok = None
        if expected is not None:
            ok = p["uses_expected_index"] and p.get("generic_uses_expected_index", True)
        bench.results.rows.append(
            Row(
                f"{backend.label}: plan of {name} among {n:,} (1,000 due)",
                result,
                target=f"uses {expected}" if expected else "",
                ok=ok,
            )
        )
