"""`make bench`: batgate's throughput, latency and memory on this machine, side by side.

(a) send: messages accepted per second, batches of 100, 32 connections, with the
    delivery engine on and with `--no-workers`;
(b) status: GET /bat/message/{id} over 100,000 delivered messages, 64 connections,
    from the cache of final answers and from the database (cache size 0);
(c) ceiling: a bare ASGI app under the same uvicorn settings and load as (b),
    measured in rounds with (b);
(d) memory: RSS of `batgate serve --no-workers` after 1,000,000 messages stored
    through the API, and the database's size;
(e) webhooks: signed events delivered per second to a local receiver;
(f) smpp: through SMPP to a local SMSC (smpp34's server): the connector against a bare
    asyncio client, and end to end with window 1 and 64 (bench/smpp.py);
(g) upstream: through another batgate as an SMSBAT upstream (`kind = "smsbat"`):
    throughput, and latency at a steady 20 messages/s (bench/upstream.py);
(h) kannel: through batgate → Kannel (`kind = "http"`, `preset = "kannel"`) → SMPP,
    beside Kannel's own sendsms → SMPP to the same kind of SMSC, the same wrk load:
    CPU per message of the gateway's processes (bench/via_kannel.py);
(i) optout: the send rate with 1,000,000 suppressed numbers beside none
    (bench/optout.py);
(j) inbound: MOs over one SMPP bind to the owner's webhook receiver, a burst and a
    steady 200/s (bench/inbound.py);

and on SQLite and on PostgreSQL (`--database`; `pg-…` phases are PostgreSQL's):
*-send-scale, *-status-scale: send, and status lookups from the database, with
    1 and with 2 `batgate serve --no-workers` processes on one database;
*-polling: status lookups from the database of messages still `processing` (receipts
    an hour away, the engine on) and of final ones, against the ceiling in rounds
    (bench/polling.py);
*-size: status-lookup latency with 10,000 vs `--big-messages` (5,000,000)
    messages stored; the big database's size, plans and backup;
*-retention: the send rate while a worker purges `--retention-messages`
    (1,000,000) old messages, against without (bench/retention.py); on PostgreSQL
    also the same day dropped as a partition (bench/pg_partitions.py);
*-console: the console on `--big-messages` messages: searches by recipient and by id,
    the 30-day overview, and the send rate beside ten operators' page loads
    (bench/console.py);
logins (SQLite): RSS and a valid key's status-lookup latency during a flood of
    wrong-password logins, from one address and from many (bench/logins.py).

wrk runs on CPU 0 and the servers on CPU 1 (taskset), all over 127.0.0.1. Results:
a Markdown table on stdout and bench/results/latest.json. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import console
import logins
import optout
import polling
import report
import retention
import wrk
from backends import Backend, PostgresBackend, SqliteBackend
from extra_options import (
    FLOOD_REQUESTS,
    RETENTION_MESSAGES,
    RETENTION_MESSAGES_QUICK,
    RunOptions,
    parse_pairs,
)
from phases import RSS_TARGET_MESSAGES, Bench
from procs import BenchError, Processes, log, pinning_available
from report import Row
from scratchdb import DEFAULT_POSTGRES, Postgres
from servers import Servers

BENCH_CPU = 0
PHASES = (
    "send",
    "status",
    "rss",
    "webhooks",
    "smpp",
    "upstream",
    "kannel",
    "optout",
    "inbound",
    "sqlite-send-scale",
    "pg-send-scale",
    "sqlite-status-scale",
    "pg-status-scale",
    "sqlite-polling",
    "pg-polling",
    "sqlite-size",
    "pg-size",
    "sqlite-retention",
    "pg-retention",
    "sqlite-console",
    "pg-console",
    "logins",
)
DATABASES = {"sqlite": ("sqlite",), "postgresql": ("postgresql",), "both": ("sqlite", "postgresql")}


def phase_database(phase: str) -> str:
    return "postgresql" if phase.startswith("pg-") else "sqlite"


def parse_options(argv: list[str] | None = None) -> RunOptions:
    p = argparse.ArgumentParser(description="batgate benchmarks (see docs/benchmarks.md).")
    p.add_argument("--quick", action="store_true", help="everything once, shorter and smaller")
    p.add_argument("--runs", type=int, help="timed wrk runs per measurement (default 3)")
    p.add_argument("--seconds", type=float, help="length of a timed run (default 10)")
    p.add_argument("--warmup", type=float, help="warm-up before each measurement (default 3)")
    p.add_argument("--status-messages", type=int, help="default 100,000 (--quick: 20,000)")
    p.add_argument("--rss-messages", type=int, help="default 1,000,000 (--quick: 200,000)")
    p.add_argument("--webhook-messages", type=int, help="default 10,000 (--quick: 2,000)")
    p.add_argument(
        "--big-messages", type=int, help="for *-size: default 5,000,000 (--quick: 500,000)"
    )
    p.add_argument(
        "--retention-messages",
        type=int,
        help=f"for *-retention: default {RETENTION_MESSAGES:,} "
        f"(--quick: {RETENTION_MESSAGES_QUICK:,})",
    )
    p.add_argument(
        "--retention-pairs",
        default="",
        help="for *-retention: more batch_size:pause pairs to purge with, e.g. 500:0.1,2000:0",
    )
    p.add_argument(
        "--flood-requests",
        type=int,
        help=f"for logins: wrong-password logins per flood (default {FLOOD_REQUESTS})",
    )
    p.add_argument(
        "--database",
        choices=sorted(DATABASES),
        help="which databases' phases to run (default both)",
    )
    p.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help=f"a PostgreSQL server to make throwaway databases on (default {DEFAULT_POSTGRES})",
    )
    p.add_argument("--only", help=f"comma-separated phases out of {','.join(PHASES)}")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory and logs")
    a = p.parse_args(argv)
    databases = DATABASES[a.database or "both"]
    phases = tuple(a.only.split(",")) if a.only else PHASES
    unknown = set(phases) - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if a.only and a.database and any(phase_database(x) not in databases for x in phases):
        p.error(f"--only {a.only} does not go with --database {a.database}")
    phases = tuple(x for x in phases if phase_database(x) in databases)
    names = ("runs", "seconds", "status_messages", "rss_messages", "webhook_messages")
    for name in (*names, "big_messages", "retention_messages", "flood_requests"):
        if getattr(a, name) is not None and getattr(a, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    try:
        pairs = parse_pairs(a.retention_pairs)
    except ValueError as exc:
        p.error(f"--retention-pairs: {exc}")
    return RunOptions(
        runs=a.runs or (1 if a.quick else 3),
        seconds=a.seconds or (4 if a.quick else 10),
        warmup=a.warmup if a.warmup is not None else (1 if a.quick else 3),
        status_messages=a.status_messages or (20_000 if a.quick else 100_000),
        rss_messages=a.rss_messages or (200_000 if a.quick else RSS_TARGET_MESSAGES),
        webhook_messages=a.webhook_messages or (2_000 if a.quick else 10_000),
        phases=tuple(x for x in PHASES if x in phases),
        keep=a.keep,
        big_messages=a.big_messages or (500_000 if a.quick else 5_000_000),
        database=a.database or "both",
        postgres=a.postgres,
        quick=a.quick,
        retention_messages=a.retention_messages
        or (RETENTION_MESSAGES_QUICK if a.quick else RETENTION_MESSAGES),
        retention_pairs=pairs,
        flood_requests=a.flood_requests or FLOOD_REQUESTS,
    )


def _postgres(opts: RunOptions) -> tuple[Postgres | None, dict[str, Any]]:
    """The PostgreSQL server for the pg-… phases, checked; None when none runs."""
    if not any(phase_database(x) == "postgresql" for x in opts.phases):
        return None, {}
    postgres = Postgres(opts.postgres, prefix=f"bgbench_{os.getpid()}_")
    info = postgres.check()
    if info["leftover"]:
        log(f"note: databases left by earlier runs: {', '.join(info['leftover'])}")
    return postgres, info


def _steps(bench: Bench) -> dict[str, Callable[[], None]]:
    steps: dict[str, Callable[[], None]] = {
        "send": bench.send,
        "status": bench.status,
        "rss": bench.rss,
        "webhooks": bench.webhooks,
        "smpp": bench.smpp,
        "upstream": bench.upstream,
        "kannel": bench.kannel,
        "optout": functools.partial(optout.run, bench),
        "inbound": bench.inbound,
        "logins": functools.partial(logins.run, bench),
    }
    for name, prefix in (("sqlite", "sqlite"), ("postgresql", "pg")):
        steps[f"{prefix}-send-scale"] = functools.partial(bench.send_scale, name)
        steps[f"{prefix}-status-scale"] = functools.partial(bench.status_scale, name)
        steps[f"{prefix}-size"] = functools.partial(bench.size, name)
        steps[f"{prefix}-retention"] = functools.partial(_retention, bench, name)
        steps[f"{prefix}-polling"] = functools.partial(_polling, bench, name)
        steps[f"{prefix}-console"] = functools.partial(_console, bench, name)
    return steps


def _retention(bench: Bench, backend: str) -> None:
    retention.run(bench, bench.backends[backend])


def _console(bench: Bench, backend: str) -> None:
    console.run(bench, bench.backends[backend])


def _polling(bench: Bench, backend: str) -> None:
    polling.run(bench, bench.backends[backend])


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)  # so the `finally` below stops every child
    if pinning_available():
        os.sched_setaffinity(0, {BENCH_CPU})  # the seeding client keeps off the server's CPU
    try:
        wrk_version = wrk.wrk_version()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    machine = report.machine()
    if (machine["busy_before_start"] or 0) > 0.10:
        log(
            f"warning: {machine['busy_before_start']:.0%} of the CPUs were busy before the "
            "bench started; other work on this machine will distort the figures"
        )
    try:
        postgres, pg_info = _postgres(opts)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="batgate-bench-"))
    procs = Processes(work)
    servers = Servers(procs, work)
    backends: dict[str, Backend] = {"sqlite": SqliteBackend(servers, work)}
    if postgres is not None:
        backends["postgresql"] = PostgresBackend(servers, postgres)
    bench = Bench(opts, work, servers, backends)
    steps = _steps(bench)
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        for phase in opts.phases:
            t0 = time.monotonic()
            steps[phase]()
            timings[phase] = round(time.monotonic() - t0, 1)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        complaints = procs.complaints()
        if complaints:
            print(f"the servers' last errors:\n{complaints}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        procs.stop_all()
        if postgres is not None:
            dropped = postgres.drop_all()
            log(f"dropped {len(dropped)} PostgreSQL database(s) of this run")
        if opts.keep:
            log(f"scratch directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - started
    doc = {
        "machine": machine | {"loadavg_at_end": report.loadavg()},
        "settings": {
            "runs": opts.runs,
            "seconds": opts.seconds,
            "warmup": opts.warmup,
            "pinned": pinning_available(),
            "wrk": wrk_version,
            "phases": list(opts.phases),
            "database": opts.database,
            "big_messages": opts.big_messages,
            "retention_messages": opts.retention_messages,
            "retention_pairs": [p.tag for p in opts.retention_pairs],
            "flood_requests": opts.flood_requests,
        },
        **({"postgres": pg_info} if pg_info else {}),
        **bench.results.doc,
        "phase_seconds": timings,
        "total_seconds": round(total, 1),
    }
    path = report.write_json(doc)
    print(_summary(doc, bench.results.rows))
    log(f"done in {total:.0f} s; results in {path.relative_to(report.REPO)}")
    return 0


def _summary(doc: dict[str, Any], rows: list[Row]) -> str:
    m, s = doc["machine"], doc["settings"]
    pin = "wrk on CPU 0, servers on CPU 1" if s["pinned"] else "not pinned (no taskset)"
    busy = m.get("busy_before_start")
    pin += "" if busy is None else f"; CPUs {busy:.0%} busy before the start"
    runs = f"medians of {s['runs']} × {s['seconds']:g} s runs [slowest–fastest]"
    head = (
        f"\nbatgate bench — {m['date']}, {m['cpu']} ({m['cores']} cores), "
        f"commit {(m['git_commit'] or '?')[:12]}{' (dirty)' if m['git_dirty'] else ''}\n"
        f"{pin}; {runs}, after {s['warmup']:g} s warm-up\n"
    )
    pg = doc.get("postgres")
    if pg:
        settings = pg["settings"]
        keys = ("shared_buffers", "max_connections", "autovacuum", "synchronous_commit")
        head += f"PostgreSQL {settings.get('server_version', '?')} at {pg['url']}: " + ", ".join(
            f"{k} {settings[k]}" for k in keys if k in settings
        )
        head += "\n"
    return head + "\n" + report.markdown(rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
