"""Retention: the send rate while a worker purges 1,000,000 old messages, and the
purge's own rate (`sqlite-retention`, `pg-retention`).

The database: the 10,000 messages batgate sent and delivered itself
(backends.Delivered), then `--retention-messages` (1,000,000) copies of them made
in SQL as cloning.py makes them (every column as the store writes it, events
included), except that the copies were created, and last updated, 100 days ago,
spread over one day (so they are also "one day's worth" for pg_partitions.py).
Every copy is final (`due_at` NULL, `delivered`), as are its events: a worker
with `BATGATE_RETENTION__MESSAGES_DAYS=30` removes all of them, and nothing else.

Sends, in rounds, one run of each condition per round, on one database:

- *API alone*: `batgate serve --no-workers` (CPU 1) and wrk (CPU 0) with the send
  load of (a) — batches of 100, 32 connections;
- *worker, no purge*: the same, with one `batgate worker` running (CPU 0, beside
  wrk) whose retention removes no messages (`MESSAGES_DAYS=0`, `EVENTS_DAYS=0`);
- *worker purging*: a `batgate worker` with `MESSAGES_DAYS=30` and
  `INTERVAL=1` (its first round a second after it starts; the run starts once
  the first batch is gone), batgate's default `batch_size` and `pause`, and any
  `--retention-pairs` as further conditions.

A worker is started before its run (which starts once the purging worker's
first batch is gone, or 1.2 s after the other is ready) and stopped after it, so
the next condition starts clean; the purge picks up where the last one stopped (its batches are
idempotent). Each round starts one condition further along the list, so that
none always runs first (the database and the engine's backlog grow through a
round). Each worker's dispatcher sees the messages sent meanwhile (a
backlog: the API takes messages far faster than one engine delivers them), in
both worker conditions alike: the purge's cost is the ratio of *purging* to
*no purge*; the ratio to *API alone* adds what a running worker costs at all.
Messages removed during each run are counted in the database before and after.

Then on a copy made before any send, with no load: one worker purges all the
copies at the default settings; the time from its first removed batch to the
last, and (PostgreSQL) the WAL it wrote and the VACUUM that the deletes leave to
autovacuum. On PostgreSQL, pg_partitions.py then compares dropping the same rows
as a partition.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cloning
import cpu
import pg_partitions
import wrk
from backends import Backend, PostgresBackend
from extra_options import RETENTION_MESSAGES, Pair
from procs import BenchError, free_port, log, wait_ready
from report import Row
from scratchdb import Target, connect, dialect
from servers import Server, batgate_argv, db_env

from batgate.config import RetentionSettings

if TYPE_CHECKING:
    from phases import Bench

DAY = 86_400.0
AGE_DAYS = 100  # the copies were last updated this long ago
SPAN_S = DAY  # over one day
KEEP_DAYS = 30  # the purging worker's retention.messages_days
CUTOFF_DAYS = 50  # what the bench counts as "still to purge": older than this
WORKER_CPU = wrk.WRK_CPU
FIRST_ROUND_S = 1.2  # INTERVAL=1: a worker's first retention round starts after 1 s
UNDER_LOAD_PER_S = 12_000  # about the most one worker purged during sends here
SEND_CONNECTIONS = 32
MIN_SHARE = 0.90  # the target: the send rate during a purge / without
DEFAULTS = Pair(RetentionSettings().batch_size, RetentionSettings().pause)


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    env: dict[str, str] | None  # the worker's settings; None: no worker
    pair: Pair | None = None  # what it purges with; None: no purge


def conditions(pairs: tuple[Pair, ...]) -> list[Condition]:
    quiet = {"BATGATE_RETENTION__MESSAGES_DAYS": "0", "BATGATE_RETENTION__EVENTS_DAYS": "0"}
    out = [
        Condition("api", "API alone", None),
        Condition("worker", "worker, no purge", _worker_env(quiet)),
    ]
    for pair in (DEFAULTS, *(p for p in pairs if p != DEFAULTS)):
        env = _worker_env(
            {
                "BATGATE_RETENTION__MESSAGES_DAYS": str(KEEP_DAYS),
                "BATGATE_RETENTION__BATCH_SIZE": str(pair.batch_size),
                "BATGATE_RETENTION__PAUSE": str(pair.pause),
            }
        )
        label = f"worker purging, {pair.label}" + (" (defaults)" if pair == DEFAULTS else "")
        out.append(Condition(f"purge-{pair.tag}", label, env, pair))
    return out


def _worker_env(extra: dict[str, str]) -> dict[str, str]:
    return {"BATGATE_RETENTION__INTERVAL": "1"} | extra


# -- the database ---------------------------------------------------------------


def grow_old(db: Target, copies: int, age_s: float = AGE_DAYS * DAY) -> dict[str, Any]:
    """Add `copies` copies of the stored (final) messages, with their events, created
    and last updated over the day that ended `age_s` ago; timings. cloning.grow's
    statements, with the copies' times placed there instead of the last 30 days."""
    kind = dialect(db)
    with connect(db) as conn:
        if kind == "sqlite":
            conn.isolation_level = None
            conn.execute("PRAGMA synchronous=OFF")  # bench set-up only
        templates, not_final, list_max, account = conn.execute(
            "SELECT count(*), sum(CASE WHEN due_at IS NULL THEN 0 ELSE 1 END), "
            "(SELECT max(id) FROM messagelists), min(account_id) FROM messages"
        ).fetchone()
        if not_final:
            raise BenchError(f"retention: {not_final} of the messages to copy are still due")
        step_ms = max(1, int(SPAN_S * 1000) // copies)
        start_ms = int((time.time() - age_s - SPAN_S) * 1000)
        q = cloning._Sql(kind, start_ms, step_ms, templates)
        for statement in cloning._TEMPLATES:
            conn.execute(statement)
        ranks = int(conn.execute("SELECT coalesce(max(k), 0) FROM tpl_events").fetchone()[0])
        if kind == "postgresql":
            conn.execute("ANALYZE tpl")
            conn.execute("ANALYZE tpl_events")
        started = time.monotonic()
        for lo in range(0, copies, cloning.CHUNK):
            hi = min(copies, lo + cloning.CHUNK)
            conn.execute(cloning._messages_insert(q, lo, hi, list_max + 1))
            for rank in range(1, ranks + 1):
                conn.execute(cloning._events_insert(q, lo, hi, rank))
            log(f"retention: {hi:,} of {copies:,} old messages written")
        conn.execute(cloning._lists_insert(q, copies, list_max + 1, account))
        if kind == "postgresql":
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('messagelists', 'id'), "
                "(SELECT max(id) FROM messagelists))"
            )
        conn.execute("DROP TABLE tpl_events")
        conn.execute("DROP TABLE tpl")
        events = int(conn.execute("SELECT count(*) FROM message_events").fetchone()[0])
    seconds = time.monotonic() - started
    return {
        "copies": copies,
        "kept": templates,
        "events": events,
        "age_days": AGE_DAYS,
        "first_ms": start_ms,
        "last_ms": start_ms + step_ms * (copies - 1),
        "seconds": round(seconds, 1),
    }


def old_left(db: Target) -> int:
    """Final messages last updated more than CUTOFF_DAYS ago: what the purge has left."""
    before = time.time() - CUTOFF_DAYS * DAY
    with connect(db, readonly=True) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM messages WHERE due_at IS NULL AND updated_at < {before}"
        ).fetchone()
    return int(row[0])


def wal_lsn(db: Target) -> str | None:
    if dialect(db) != "postgresql":
        return None
    with connect(db, readonly=True) as conn:
        return str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])


def wal_since(db: Target, lsn: str | None) -> int | None:
    if lsn is None:
        return None
    with connect(db, readonly=True) as conn:
        row = conn.execute(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')").fetchone()
    return int(row[0])


# -- workers ----------------------------------------------------------------------


@contextmanager
def worker(bench: Bench, name: str, db: Target, env: dict[str, str]) -> Iterator[int]:
    """`batgate worker` on `db` (CPU 0), ready (its /healthz answers); its pid."""
    port = free_port()
    argv = [*batgate_argv(), "worker", "--metrics-port", str(port)]
    procs = bench.servers.procs
    child = procs.start(name, argv, db_env(db) | env, WORKER_CPU)
    try:
        wait_ready(child, f"http://127.0.0.1:{port}/healthz")
        yield child.pid
    finally:
        procs.stop(child)


def wait_for_purge(db: Target, before: int, timeout: float = 60.0) -> float:
    """Seconds until the first batch is gone (the count drops below `before`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if old_left(db) < before:
            return time.monotonic() - started
        time.sleep(0.05)
    raise BenchError(f"retention: the worker removed nothing within {timeout:.0f} s")


# -- the rounds -------------------------------------------------------------------


@dataclass
class Done:
    run: wrk.Run
    removed: int = 0
    purge_seconds: float = 0.0
    left_after: int = 0
    worker_cores: float = 0.0
    api_cores: float = 0.0


def _one_run(
    bench: Bench, db: Target, server: Server, load: wrk.Load, cond: Condition, tag: str
) -> Done:
    seconds = bench.opts.seconds
    if cond.env is None:
        api0 = cpu.process_ticks(server.child.pid) or 0
        run = _checked(wrk.run_once(load, seconds), load)
        api = ((cpu.process_ticks(server.child.pid) or 0) - api0) / cpu._TICKS_PER_S
        return Done(run, api_cores=round(api / run.seconds, 3))
    if cond.pair is not None and old_left(db) == 0:
        raise BenchError(
            f"retention: no old messages left for {cond.label}: raise --retention-messages"
        )
    with worker(bench, f"retention-{tag}", db, cond.env) as pid:
        # Both kinds of worker run a second before their run starts: the purging
        # one until its first batch is gone (its first round, after INTERVAL).
        if cond.pair is not None:
            wait_for_purge(db, old_left(db))
        else:
            time.sleep(FIRST_ROUND_S)
        left0, t0 = old_left(db), time.monotonic()
        ticks0 = (cpu.process_ticks(pid) or 0, cpu.process_ticks(server.child.pid) or 0)
        run = _checked(wrk.run_once(load, seconds), load)
        ticks1 = (cpu.process_ticks(pid) or 0, cpu.process_ticks(server.child.pid) or 0)
        left1, t1 = old_left(db), time.monotonic()
    if cond.pair is not None and left1 == 0:
        log(f"retention: warning: the purge ran out during a run of {cond.label}")
    cores = [(b - a) / cpu._TICKS_PER_S / run.seconds for a, b in zip(ticks0, ticks1, strict=True)]
    return Done(run, left0 - left1, t1 - t0, left1, round(cores[0], 3), round(cores[1], 3))


def _enough(bench: Bench, db: Target, conds: list[Condition]) -> None:
    """Warn when the purging runs may remove every old message before the last one."""
    purging = sum(1 for c in conds if c.pair is not None)
    need = bench.opts.runs * purging * bench.opts.seconds * UNDER_LOAD_PER_S
    left = old_left(db)
    if need > left:
        log(
            f"retention: warning: {bench.opts.runs} rounds of {purging} purging runs may "
            f"remove up to {need:,.0f} messages, more than the {left:,} there are; "
            "raise --retention-messages"
        )


def _checked(run: wrk.Run, load: wrk.Load) -> wrk.Run:
    if run.failures:
        raise BenchError(f"{run.failures} failed requests ({run.errors}) against {load.url}")
    return run


def rounds(
    bench: Bench, backend: Backend, db: Target, key: str, conds: list[Condition]
) -> dict[str, list[Done]]:
    """`--runs` rounds of one run per condition against one `serve --no-workers`."""
    o = bench.opts
    done: dict[str, list[Done]] = {c.name: [] for c in conds}
    with bench.servers.batgate(f"{backend.name}-retention-api", db, workers=False) as server:
        load = wrk.Load(
            f"{server.url}/bat/messagelist",
            bench.send_script,
            [str(bench.send_bodies_file()), key],
            SEND_CONNECTIONS,
        )
        _enough(bench, db, conds)
        if o.warmup > 0:
            wrk.run_once(load, o.warmup)
        for r in range(o.runs):
            # Each round starts one condition later: the database and the engine's
            # backlog grow through a round, and no condition should always go first.
            for cond in conds[r % len(conds) :] + conds[: r % len(conds)]:
                d = _one_run(bench, db, server, load, cond, f"{backend.name}-{cond.name}-{r}")
                done[cond.name].append(d)
                extra = f", {d.removed:,} removed" if cond.pair is not None else ""
                log(f"retention: round {r + 1}, {cond.label}: {d.run.rps * 100:,.0f} msg/s{extra}")
    return done


# -- the purge alone ------------------------------------------------------------


def purge_alone(bench: Bench, backend: Backend, db: Target, pair: Pair) -> dict[str, Any]:
    """One worker purges every old message of `db`, nothing else running; timings."""
    total = old_left(db)
    env = _worker_env(
        {
            "BATGATE_RETENTION__MESSAGES_DAYS": str(KEEP_DAYS),
            "BATGATE_RETENTION__BATCH_SIZE": str(pair.batch_size),
            "BATGATE_RETENTION__PAUSE": str(pair.pause),
        }
    )
    lsn = wal_lsn(db)
    timeout = 120 + total / 200  # far beyond any rate seen
    log(f"{backend.label} retention: one worker purges {total:,} messages, nothing else running")
    with worker(bench, f"{backend.name}-retention-alone", db, env) as pid:
        wait_for_purge(db, total)
        started = time.monotonic()
        ticks0 = cpu.process_ticks(pid) or 0
        half_at, left = None, total
        while left > 0:
            if time.monotonic() - started > timeout:
                raise BenchError(f"retention: {left:,} messages left after {timeout:.0f} s")
            time.sleep(0.2)
            left = old_left(db)
            if half_at is None and left <= total // 2:
                half_at = time.monotonic() - started
        seconds = time.monotonic() - started
        worker_cpu = ((cpu.process_ticks(pid) or 0) - ticks0) / cpu._TICKS_PER_S
    out: dict[str, Any] = {
        "messages": total,
        "batch_size": pair.batch_size,
        "pause_s": pair.pause,
        "seconds": round(seconds, 1),
        "messages_per_s": round(total / seconds),
        "first_half_s": round(half_at or seconds, 1),
        "second_half_s": round(seconds - (half_at or seconds), 1),
        "worker_cpu_s": round(worker_cpu, 1),
        "pauses_s": round((total / pair.batch_size) * pair.pause, 1),
    }
    wal = wal_since(db, lsn)
    if wal is not None:
        out["wal_bytes"] = wal  # the server's, all databases: others' writes count too
        started = time.monotonic()
        with connect(db) as conn:
            conn.execute("VACUUM messages, message_events, messagelists")
        out["vacuum_s"] = round(time.monotonic() - started, 1)
    log(
        f"{backend.label} retention: {total:,} purged in {seconds:.0f} s "
        f"({total / seconds:,.0f}/s; halves {out['first_half_s']:.0f} + "
        f"{out['second_half_s']:.0f} s)"
    )
    return out


# -- the phase ------------------------------------------------------------------


def run(bench: Bench, backend: Backend) -> None:
    n = getattr(bench.opts, "retention_messages", RETENTION_MESSAGES)
    pairs: tuple[Pair, ...] = getattr(bench.opts, "retention_pairs", ())
    base = backend.delivered(bench.pool)
    db = backend.copy(base.db, "retention")
    log(f"{backend.label} retention: {n:,} old, final messages (and their events)")
    grown = grow_old(db, n)
    grown["analyze_s"] = round(backend.analyze(db), 1)
    alone_db = backend.copy(db, "retention-alone")
    part_db = backend.copy(db, "retention-part") if isinstance(backend, PostgresBackend) else None
    conds = conditions(pairs)
    done = rounds(bench, backend, db, base.key, conds)
    alone = purge_alone(bench, backend, alone_db, DEFAULTS)
    doc: dict[str, Any] = {"database": grown, "purge_alone": alone}
    doc |= _send_rows(bench, backend, conds, done)
    _alone_row(bench, backend, alone)
    if part_db is not None:
        doc["partitions"] = pg_partitions.run(bench, backend, part_db, base.key, alone)
    bench.results.doc[f"{backend.name}_retention"] = doc


def _send_rows(
    bench: Bench, backend: Backend, conds: list[Condition], done: dict[str, list[Done]]
) -> dict[str, Any]:
    out: dict[str, Any] = {"conditions": {}}
    base = {name: [d.run.rps for d in done[name]] for name in ("api", "worker")}
    for cond in conds:
        runs = done[cond.name]
        m = wrk.Measurement.of([d.run for d in runs])
        entry: dict[str, Any] = m.to_json() | {
            "label": cond.label,
            "messages_per_s": round(m.rps * 100),
            "worker_cores": [d.worker_cores for d in runs],
            "api_cores": [d.api_cores for d in runs],
        }
        result = f"{m.rps * 100:,.0f} msg/s [{m.rps_min * 100:,.0f}–{m.rps_max * 100:,.0f}]"
        target, ok = "", None
        if cond.pair is not None:
            share = _share([d.run.rps for d in runs], base["worker"])
            share_api = _share([d.run.rps for d in runs], base["api"])
            rate = statistics.median(d.removed / d.purge_seconds for d in runs)
            ok = share >= MIN_SHARE
            entry |= {
                "share_of_no_purge": round(share, 3),
                "share_of_api_alone": round(share_api, 3),
                "removed": [d.removed for d in runs],
                "purge_per_s": round(rate),
                "left_after": [d.left_after for d in runs],
                "ok": ok,
            }
            result += (
                f", **{share:.0%} of no purge** ({share_api:.0%} of API alone); "
                f"purging {rate:,.0f} messages/s"
            )
            target = f"≥ {MIN_SHARE:.0%} of no purge"
        elif cond.name == "worker":
            share_api = _share(base["worker"], base["api"])
            entry["share_of_api_alone"] = round(share_api, 3)
            result += f", {share_api:.0%} of API alone"
        out["conditions"][cond.name] = entry
        bench.results.rows.append(
            Row(
                f"{backend.label} send during retention, {cond.label}",
                result,
                f"{m.p50_ms:.0f} ms",
                f"{m.p99_ms:.0f} ms",
                target,
                ok,
            )
        )
        log(f"{backend.label} retention, {cond.label}: {result}")
    return out


def _share(these: list[float], base: list[float]) -> float:
    """The median of the per-round ratios."""
    return statistics.median(a / b for a, b in zip(these, base, strict=True))


def _alone_row(bench: Bench, backend: Backend, a: dict[str, Any]) -> None:
    text = (
        f"{a['seconds']:.0f} s, {a['messages_per_s']:,} messages/s (first half "
        f"{a['first_half_s']:.0f} s, second {a['second_half_s']:.0f} s; "
        f"{a['pauses_s']:.0f} s of it pauses); worker CPU {a['worker_cpu_s']:.0f} s"
    )
    if "wal_bytes" in a:
        text += f"; {a['wal_bytes'] / 2**20:,.0f} MB of WAL; VACUUM after: {a['vacuum_s']:.1f} s"
    bench.results.rows.append(
        Row(
            f"{backend.label} purge of {a['messages']:,} messages alone, "
            f"batch {a['batch_size']:,}, pause {a['pause_s'] * 1000:g} ms",
            text,
        )
    )
