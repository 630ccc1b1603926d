"""The measurements: send (a), status with the ceiling beside it (b, c), memory (d),
webhooks (e) on SQLite; scale-out and database size on SQLite and PostgreSQL.

Each phase starts its own servers on fresh databases, adds rows to the results
table and a section to the JSON document, and stops what it started. The
phases on both databases live in scaleout.py and bigdb.py.
"""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bigdb
import inbound
import scaleout
import seeding
import smpp
import upstream
import via_kannel
import webhooks
import wrk
from backends import Backend
from procs import BenchError, log
from report import Row
from servers import Server, Servers, count_messages, db_size_mb

SEND_BATCH = 100
SEND_CONNECTIONS = 32
STATUS_CONNECTIONS = 64
POOL_SIZE = 10_000
RSS_BATCH = 1000

# The targets (docs/benchmarks.md).
MIN_MESSAGES_PER_S = 10_000
MIN_CEILING_SHARE = 0.50
MAX_STATUS_P99_MS = 20.0
MAX_RSS_MB = 200.0
RSS_TARGET_MESSAGES = 1_000_000
DEFAULT_STATUS_CACHE = 100_000  # batgate's status_cache_size default


@dataclass
class Options:
    runs: int
    seconds: float
    warmup: float
    status_messages: int
    rss_messages: int
    webhook_messages: int
    phases: tuple[str, ...]
    keep: bool
    big_messages: int = 5_000_000
    database: str = "both"
    postgres: str = ""
    quick: bool = False


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    doc: dict[str, Any] = field(default_factory=dict)


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value * 1000:.0f} µs"


def spread(m: wrk.Measurement) -> str:
    return f" [{m.rps_min:,.0f}–{m.rps_max:,.0f}]" if m.rps_max > m.rps_min else ""


class Bench:
    def __init__(
        self, opts: Options, work: Path, servers: Servers, backends: dict[str, Backend]
    ) -> None:
        self.opts = opts
        self.work = work
        self.servers = servers
        self.backends = backends
        self.results = Results()
        self.pool = seeding.phone_pool(POOL_SIZE)
        self.send_script = wrk.build_script("send", work)
        self.status_script = wrk.build_script("status", work)

    def measure(self, loads: dict[str, wrk.Load]) -> dict[str, wrk.Measurement]:
        o = self.opts
        return wrk.measure_interleaved(loads, warmup=o.warmup, seconds=o.seconds, runs=o.runs)

    def send_bodies_file(self) -> Path:
        """The send bodies (batches of 100 over the pool), one JSON document a line."""
        path = self.work / "send-bodies.txt"
        if not path.exists():
            path.write_bytes(b"\n".join(seeding.send_bodies(self.pool, SEND_BATCH)) + b"\n")
        return path

    # -- on SQLite and PostgreSQL: scale-out, size ----------------------------

    def send_scale(self, backend: str) -> None:
        scaleout.send(self, self.backends[backend])

    def status_scale(self, backend: str) -> None:
        scaleout.status(self, self.backends[backend])

    def size(self, backend: str) -> None:
        bigdb.run(self, self.backends[backend])

    # -- (e) webhooks ---------------------------------------------------------

    def webhooks(self) -> None:
        n = self.opts.webhook_messages
        log(f"webhooks: {n:,} messages, their {2 * n:,} events held, then delivered")
        doc, row = webhooks.run(self.servers.procs, self.servers, self.pool, n, SEND_BATCH)
        self.results.doc["webhooks"] = doc
        self.results.rows.append(row)
        log(f"webhooks: {row.result}")

    # -- (f) smpp -------------------------------------------------------------

    def smpp(self) -> None:
        log("smpp: the bare client, the connector, and end to end through SMPP")
        pool = [n for n in self.pool if n[-4:] not in smpp.SMSC_ENDINGS]
        bodies = seeding.send_bodies(pool[: len(pool) // SEND_BATCH * SEND_BATCH], SEND_BATCH)
        doc, rows = smpp.run(self.servers, bodies, self.opts.quick)
        self.results.doc["smpp"] = doc
        self.results.rows.extend(rows)

    def upstream(self) -> None:
        log("upstream: through another batgate as an SMSBAT upstream (kind = smsbat)")
        pool = [n for n in self.pool if n[-4:] not in smpp.SMSC_ENDINGS]
        doc, rows = upstream.run(self.servers, pool, self.opts.quick)
        self.results.doc["upstream"] = doc
        self.results.rows.extend(rows)

    def kannel(self) -> None:
        log("kannel: through batgate → Kannel (kind = http, preset = kannel) vs Kannel alone")
        doc, rows = via_kannel.run(self.servers, self.opts.quick, self.work / "kannel")
        self.results.doc["kannel"] = doc
        self.results.rows.extend(rows)

    def inbound(self) -> None:
        log("inbound: MOs over one SMPP bind to the owner's webhook receiver")
        doc, rows = inbound.run(self.servers, self.opts.quick)
        self.results.doc["inbound"] = doc
        self.results.rows.extend(rows)
        for row in rows:
            log(f"inbound: {row.what}: {row.result}, p50 {row.p50}, p99 {row.p99}")

    # -- (a) send -------------------------------------------------------------

    def send(self) -> None:
        bodies_file = self.send_bodies_file()
        out: dict[str, Any] = {
            "batch": SEND_BATCH,
            "connections": SEND_CONNECTIONS,
            "distinct_recipients": len(self.pool),
        }
        # One after the other: the engine's backlog from the first would eat into the second.
        for workers, label, tag in ((True, "engine on", "workers"), (False, "--no-workers", "api")):
            db, key = self.servers.new_db(f"send-{tag}")
            with self.servers.batgate(f"send-{tag}", db, workers=workers) as server:
                url = f"{server.url}/bat/messagelist"
                load = wrk.Load(url, self.send_script, [str(bodies_file), key], SEND_CONNECTIONS)
                m = self.measure({tag: load})[tag]
                rss = server.rss_mb()
            out[tag] = self.send_row(label, m) | {"rss_mb_after": round(rss, 1)}
        self.results.doc["send"] = out

    def send_row(self, label: str, m: wrk.Measurement) -> dict[str, Any]:
        per_s = m.rps * SEND_BATCH
        ok = per_s >= MIN_MESSAGES_PER_S
        self.results.rows.append(
            Row(
                f"send, {label}: 100 messages/request, 32 conns",
                f"{per_s:,.0f} msg/s ({m.rps:,.0f} req/s{spread(m)})",
                ms(m.p50_ms),
                ms(m.p99_ms),
                f"≥ {MIN_MESSAGES_PER_S:,} msg/s",
                ok,
            )
        )
        log(f"send, {label}: {per_s:,.0f} messages/s, p99 {m.p99_ms:.1f} ms")
        return m.to_json() | {"messages_per_s": round(per_s), "ok": ok}

    # -- (b) status and (c) the ceiling ---------------------------------------

    def status(self) -> None:
        n = self.opts.status_messages
        db, key = self.servers.new_db("status")
        ids = self.work / "ids.txt"
        out: dict[str, Any] = {"messages": n, "connections": STATUS_CONNECTIONS}
        with ExitStack() as stack:
            cached = stack.enter_context(self.servers.batgate("status-cached", db, workers=True))
            seeded = self.seed_final(cached, db, key, ids, out)
            out["rss_mb_all_final"] = round(cached.rss_mb(), 1)
            out["cache_warmup"] = self.warm_cache(cached, ids, key, seeded)
            from_db = stack.enter_context(
                self.servers.batgate(
                    "status-db", db, workers=True, env={"BATGATE_STATUS_CACHE_SIZE": "0"}
                )
            )
            ceiling = stack.enter_context(self.servers.ceiling())
            # In rounds (ceiling, cached, database), so the shares compare like with like.
            m = self.measure(
                {
                    "ceiling": self.status_load(ceiling, ids, key),
                    "cached": self.status_load(cached, ids, key),
                    "database": self.status_load(from_db, ids, key),
                }
            )
            out["rss_mb_cache_full"] = round(cached.rss_mb(), 1)
            out["rss_mb_cache_off"] = round(from_db.rss_mb(), 1)
        self.results.doc["ceiling"] = self.ceiling_row(m["ceiling"])
        out["cached"] = self.status_row("status, final + cached", m["cached"], m["ceiling"])
        out["database"] = self.status_row(
            "status, from the database (cache 0)", m["database"], m["ceiling"]
        )
        self.results.doc["status"] = out
        self.cache_rss_row(seeded, out)

    def seed_final(self, server: Server, db: Path, key: str, ids: Path, out: dict[str, Any]) -> int:
        """Seed through the API, keep the ids, wait until the engine made every one final."""
        n = self.opts.status_messages
        log(f"status: seeding {n:,} messages ({n // SEND_BATCH} requests of {SEND_BATCH})")
        bodies = seeding.send_bodies(self.pool, SEND_BATCH)
        seeded = seeding.seed(server.url, key, bodies, n // SEND_BATCH, keep_ids=True)
        ids.write_text("".join(f"{i}\n" for i in seeded.ids))
        log(f"status: seeded at {seeded.per_second:,.0f} msg/s; waiting for final statuses")
        final_s = seeding.wait_final(db, timeout=600)
        out["seed"] = {"messages_per_s": round(seeded.per_second), "seconds": seeded.seconds}
        self.engine_row(seeded.accepted, seeded.seconds + final_s, out)
        return seeded.accepted

    def engine_row(self, n: int, seconds: float, out: dict[str, Any]) -> None:
        """How fast the engine made the seeded messages final (no target; context)."""
        out["all_final_after_s"] = round(seconds, 1)
        out["engine_final_per_s"] = round(n / seconds)
        self.results.rows.append(
            Row(
                f"engine: {n:,} messages sent and final (sandbox, 2 s receipts)",
                f"{seconds:.0f} s after the first send ≈ {n / seconds:,.0f} msg/s",
            )
        )
        log(f"status: all final {seconds:.0f} s after seeding began")

    def status_load(
        self, server: Server, ids: Path, key: str, order: str = "random", skip: int = 0
    ) -> wrk.Load:
        args = [str(ids), key, order, str(skip)]
        return wrk.Load(f"{server.url}/bat/message/", self.status_script, args, STATUS_CONNECTIONS)

    def warm_cache(self, server: Server, ids: Path, key: str, count: int) -> dict[str, Any]:
        """Read every id once, in file order, in chunks that overlap by the connection count."""
        offset, started, chunk = 0, time.monotonic(), 5.0
        for _ in range(200):
            if offset >= count:
                break
            load = self.status_load(server, ids, key, "sequential", offset)
            done = wrk.run_once(load, chunk)
            if done.failures:
                raise BenchError(f"cache warm-up: {done.errors}")
            offset += max(1, done.requests - STATUS_CONNECTIONS)
            # The next chunk just long enough for what is left, at this chunk's pace.
            chunk = min(5.0, max(1.0, (count - offset) / max(1.0, done.rps) + 0.5))
        else:
            raise BenchError("cache warm-up did not get through the ids")
        seconds = time.monotonic() - started
        log(f"status: read all {count:,} ids once in {seconds:.0f} s (cache warm-up)")
        return {"ids_read": offset, "seconds": round(seconds, 1)}

    def ceiling_row(self, m: wrk.Measurement) -> dict[str, Any]:
        self.results.rows.append(
            Row(
                "ceiling: bare ASGI app, same load as status",
                f"{m.rps:,.0f} req/s{spread(m)}",
                ms(m.p50_ms),
                ms(m.p99_ms),
            )
        )
        log(f"ceiling: {m.rps:,.0f} req/s")
        return m.to_json() | {"connections": STATUS_CONNECTIONS}

    def status_row(self, what: str, m: wrk.Measurement, ceiling: wrk.Measurement) -> dict[str, Any]:
        # The median of the per-round shares: each round's runs ran minutes apart at most.
        share = statistics.median(
            s["rps"] / c["rps"] for s, c in zip(m.runs, ceiling.runs, strict=True)
        )
        ok = share >= MIN_CEILING_SHARE and m.p99_ms < MAX_STATUS_P99_MS
        result = f"{m.rps:,.0f} req/s{spread(m)}, {share:.0%} of ceiling"
        target = f"≥ {MIN_CEILING_SHARE:.0%} of ceiling, p99 < {MAX_STATUS_P99_MS:.0f} ms"
        self.results.rows.append(
            Row(f"{what}, 64 conns", result, ms(m.p50_ms), ms(m.p99_ms), target, ok)
        )
        log(f"{what}: {result}, p99 {m.p99_ms:.1f} ms")
        return m.to_json() | {"share_of_ceiling": round(share, 3), "ok": ok}

    def cache_rss_row(self, n: int, out: dict[str, Any]) -> None:
        """The status server's memory once its cache of final answers is full."""
        full, before = out["rss_mb_cache_full"], out["rss_mb_all_final"]
        # Judged only with as many answers cached as the default cache holds.
        at_scale = n >= DEFAULT_STATUS_CACHE
        ok = full < MAX_RSS_MB if at_scale else None
        out["rss_ok"] = ok
        self.results.rows.append(
            Row(
                f"RSS of the status server, {n:,} final answers cached",
                f"{full:.0f} MB (before the reads {before:.0f} MB; "
                f"cache off {out['rss_mb_cache_off']:.0f} MB)",
                target=f"< {MAX_RSS_MB:.0f} MB"
                + ("" if at_scale else f" (at {DEFAULT_STATUS_CACHE:,})"),
                ok=ok,
            )
        )
        log(f"status: RSS {full:.0f} MB with the cache full, {before:.0f} MB before the reads")

    # -- (d) memory -----------------------------------------------------------

    def rss(self) -> None:
        n = self.opts.rss_messages
        db, key = self.servers.new_db("rss")
        bodies = seeding.send_bodies(self.pool, RSS_BATCH)
        with self.servers.batgate("rss", db, workers=False) as server:
            idle = server.rss_mb()
            log(f"rss: seeding {n:,} messages ({n // RSS_BATCH} requests of {RSS_BATCH})")
            seeded = seeding.seed(server.url, key, bodies, n // RSS_BATCH, concurrency=4)
            after = server.rss_mb()
            running = db_size_mb(db)
        stored = count_messages(db)
        sizes = db_size_mb(db)  # closed: the last connection checkpointed the WAL into the file
        at_scale = stored >= RSS_TARGET_MESSAGES
        ok = after < MAX_RSS_MB if at_scale else None
        self.results.doc["rss"] = {
            "server": "batgate serve --no-workers",
            "messages": stored,
            "batch": RSS_BATCH,
            "seed_messages_per_s": round(seeded.per_second),
            "rss_mb_idle": round(idle, 1),
            "rss_mb_after": round(after, 1),
            "db_mb_running": running,
            "db_mb": sizes,
            "ok": ok,
        }
        target = f"< {MAX_RSS_MB:.0f} MB" + ("" if at_scale else f" (at {RSS_TARGET_MESSAGES:,})")
        self.results.rows.append(
            Row(
                f"RSS after {stored:,} messages stored (--no-workers)",
                f"{after:.0f} MB (idle {idle:.0f} MB); DB file {sizes['db']:,.0f} MB "
                f"(running: {running['db']:,.0f} MB + WAL {running['wal']:,.0f} MB)",
                target=target,
                ok=ok,
            )
        )
        log(f"rss: {after:.0f} MB after {stored:,} messages; seeded at {seeded.per_second:,.0f}/s")
