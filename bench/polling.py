"""Status lookups as clients really make them: polling messages that are not final yet.

On one database (SQLite or PostgreSQL): 20,000 messages sent and delivered, then
20,000 more sent through a server whose sandbox carrier answers receipts an hour
later, so they stay `processing` with the engine running (handed over, waiting for
a receipt). That server, its cache of final answers off, is then read at random
from both sets, with the bare-ASGI ceiling in the same rounds (ceiling, final,
processing): every lookup is one read of a stored status document by primary key.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import seeding
import wrk
from backends import Backend
from phases import MAX_STATUS_P99_MS, MIN_CEILING_SHARE, STATUS_CONNECTIONS, Bench, ms, spread
from procs import BenchError, log
from report import Row
from scratchdb import Target, scalar

POLL_MESSAGES = 20_000
_BATCH = 100
# Receipts an hour away: nothing the engine does during the runs makes them final.
_RECEIPTS_LATER = {
    "BATGATE_SANDBOX__DELIVERY_DELAY": "3600",
    "BATGATE_SANDBOX__SLOW_DELAY": "3600",
    "BATGATE_SANDBOX__JITTER": "0",
}
_CACHE_OFF = {"BATGATE_STATUS_CACHE_SIZE": "0"}
# The share of the ceiling each database must reach (PostgreSQL's reads cross a socket
# to another process: the target set for it is lower).
TARGET_SHARE = {"sqlite": MIN_CEILING_SHARE, "postgresql": 0.30}


def run(bench: Bench, backend: Backend) -> None:
    n = min(POLL_MESSAGES, bench.opts.status_messages) // _BATCH * _BATCH
    servers, name = bench.servers, backend.name
    db, key = backend.new_db("polling")
    bodies = seeding.send_bodies(bench.pool, _BATCH)
    final_ids = bench.work / f"{name}-polling-final-ids.txt"
    processing_ids = bench.work / f"{name}-polling-processing-ids.txt"
    log(f"{backend.label} polling: {n:,} messages sent until final, then {n:,} left processing")
    with servers.batgate(f"{name}-polling-seed", db, workers=True) as server:
        _keep(seeding.seed(server.url, key, bodies, n // _BATCH, keep_ids=True), final_ids)
        seeding.wait_final(db, timeout=600)
    env = _RECEIPTS_LATER | _CACHE_OFF
    with servers.batgate(f"{name}-polling", db, workers=True, env=env) as polled:
        later = seeding.seed(polled.url, key, bodies, n // _BATCH, keep_ids=True)
        _keep(later, processing_ids)
        handed_over_s = _wait_handed_over(db, timeout=600)
        log(f"{backend.label} polling: all {n:,} handed over, waiting for receipts")
        with servers.ceiling() as ceiling:

            def load(server_url: str, ids: Path) -> wrk.Load:
                args = [str(ids), key, "random", "0"]
                return wrk.Load(
                    f"{server_url}/bat/message/", bench.status_script, args, STATUS_CONNECTIONS
                )

            m = bench.measure(
                {
                    "ceiling": load(ceiling.url, final_ids),
                    "final": load(polled.url, final_ids),
                    "processing": load(polled.url, processing_ids),
                }
            )
        still = _count(db, "status = 'processing'")
    if still < n:
        raise BenchError(f"{n - still:,} of the polled messages went final during the runs")
    doc: dict[str, Any] = {
        "messages_each": n,
        "connections": STATUS_CONNECTIONS,
        "handed_over_after_s": round(handed_over_s, 1),
        "ceiling": m["ceiling"].to_json(),
    }
    bench.results.rows.append(
        Row(
            f"{backend.label} polling: ceiling, bare ASGI app, same load",
            f"{m['ceiling'].rps:,.0f} req/s{spread(m['ceiling'])}",
            ms(m["ceiling"].p50_ms),
            ms(m["ceiling"].p99_ms),
        )
    )
    for which, what in (("final", "final"), ("processing", "still processing, engine on")):
        r = m[which]
        share = statistics.median(
            s["rps"] / c["rps"] for s, c in zip(r.runs, m["ceiling"].runs, strict=True)
        )
        wanted = TARGET_SHARE[name]
        ok = share >= wanted and r.p99_ms < MAX_STATUS_P99_MS
        result = f"{r.rps:,.0f} req/s{spread(r)}, {share:.0%} of ceiling"
        target = f"≥ {wanted:.0%} of ceiling, p99 < {MAX_STATUS_P99_MS:.0f} ms"
        bench.results.rows.append(
            Row(
                f"{backend.label} status from the database (cache 0), {what}, "
                f"{STATUS_CONNECTIONS} conns",
                result,
                ms(r.p50_ms),
                ms(r.p99_ms),
                target,
                ok,
            )
        )
        log(f"{backend.label} polling, {what}: {result}, p99 {r.p99_ms:.1f} ms")
        doc[which] = r.to_json() | {"share_of_ceiling": round(share, 3), "ok": ok}
    bench.results.doc[f"{name}_polling"] = doc


def _keep(seeded: seeding.Seeded, path: Path) -> None:
    path.write_text("".join(f"{i}\n" for i in seeded.ids))


def _count(db: Target, where: str) -> int:
    return int(scalar(db, f"SELECT count(*) FROM messages WHERE {where}"))


def _wait_handed_over(db: Target, timeout: float) -> float:
    """Seconds until the engine has handed every message over (none waits for a first
    attempt); BenchError after `timeout`."""
    started = time.monotonic()
    left = -1
    for _ in range(int(timeout) + 1):
        # A hand-over stores the carrier's id of the message (the sandbox's sim-…).
        left = _count(db, "status = 'processing' AND carrier_ref IS NULL")
        if left == 0:
            return time.monotonic() - started
        time.sleep(1.0)
    raise BenchError(f"{left} messages not handed over after {timeout:.0f} s")
