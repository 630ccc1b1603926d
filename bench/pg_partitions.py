"""PostgreSQL: a day of messages removed by dropping a partition, beside the batched
DELETEs of retention (the `pg-retention` phase, after retention.py's rounds).

A copy of the retention database (the 1,000,000 copies created 100 days ago over
one day, and the 10,000 recent messages) is rebuilt with `messages` and
`message_events` as range-partitioned tables of the same columns and indexes:
`messages` by its time-ordered id (12 hex digits of milliseconds, then 10
random: store/manager.py `new_message_id`), `message_events` by `message_id`, so
a message and its events fall in partitions of the same bounds. Two partitions
each: `*_old` (every id before the day after the copies) and `*_new` (the rest,
where new sends go). A primary key of a partitioned table must contain the
partition key: `messages` keeps `(id)`, `message_events` becomes
`(id, message_id)`.

Then, on that database with nothing else running: `ALTER TABLE … DETACH
PARTITION` and `DROP TABLE` of both `*_old` partitions (times, WAL written);
and on a second copy, while `batgate serve --no-workers` takes the send load
of (a): three runs — before, during (the detach, `CONCURRENTLY`, and the drop
start a third of the way in) and after — to see what the drop does to sends.
The batched DELETEs' figures are retention.py's, on the same rows.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import wrk
from backends import Backend
from procs import BenchError, log
from report import Row
from scratchdb import Target, connect
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from batgate.store.schema import message_events, messages

if TYPE_CHECKING:
    from phases import Bench

DAY = 86_400.0
# (table, partition key, primary key's name, its columns: the partition key must be one)
TABLES = (
    ("messages", "id", "messages_pkey", "id"),
    ("message_events", "message_id", "message_events_pkey", "id, message_id"),
)
SEND_CONNECTIONS = 32


def boundary(age_days: float) -> str:
    """The first id of a message created `age_days` ago (ids sort by creation time)."""
    return f"{int((time.time() - age_days * DAY) * 1000):012x}"


def partition(db: Target, cut: str) -> dict[str, Any]:
    """Rebuild `messages` and `message_events` as tables partitioned at `cut`."""
    started = time.monotonic()
    with connect(db) as conn, conn.transaction():
        for table, key, _, _ in TABLES:
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_flat")
            conn.execute(
                f"CREATE TABLE {table} (LIKE {table}_flat INCLUDING DEFAULTS) "
                f"PARTITION BY RANGE ({key})"
            )
            conn.execute(
                f"CREATE TABLE {table}_old PARTITION OF {table} "
                f"FOR VALUES FROM (MINVALUE) TO ('{cut}')"
            )
            conn.execute(
                f"CREATE TABLE {table}_new PARTITION OF {table} "
                f"FOR VALUES FROM ('{cut}') TO (MAXVALUE)"
            )
            conn.execute(f"INSERT INTO {table} SELECT * FROM {table}_flat")
        conn.execute("ALTER SEQUENCE message_events_id_seq OWNED BY message_events.id")
        conn.execute("DROP TABLE messages_flat, message_events_flat")
        for table, _, pkey, columns in TABLES:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {pkey} PRIMARY KEY ({columns})")
        for index in (*messages.indexes, *message_events.indexes):
            conn.execute(str(CreateIndex(index).compile(dialect=postgresql.dialect())))
        counts = {}
        for table, *_ in TABLES:
            for part in (f"{table}_old", f"{table}_new"):
                row = conn.execute(f"SELECT count(*) FROM {part}").fetchone()
                counts[part] = int(row[0])
    return {"cut": cut, "rows": counts, "seconds": round(time.monotonic() - started, 1)}


def drop_old(db: Target, concurrently: bool) -> dict[str, Any]:
    """DETACH and DROP the `*_old` partitions, each statement on its own; times, WAL."""
    out: dict[str, Any] = {"concurrently": concurrently}
    how = " CONCURRENTLY" if concurrently else ""
    with connect(db) as conn:
        sizes = conn.execute(
            "SELECT pg_total_relation_size('messages_old') + "
            "pg_total_relation_size('message_events_old')"
        ).fetchone()
        out["bytes"] = int(sizes[0])
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        started = time.monotonic()
        for table, *_ in TABLES:
            t0 = time.monotonic()
            conn.execute(f"ALTER TABLE {table} DETACH PARTITION {table}_old{how}")
            t1 = time.monotonic()
            conn.execute(f"DROP TABLE {table}_old")
            out[f"{table}_detach_s"] = round(t1 - t0, 3)
            out[f"{table}_drop_s"] = round(time.monotonic() - t1, 3)
        out["seconds"] = round(time.monotonic() - started, 3)
        wal = conn.execute(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')").fetchone()
        out["wal_bytes"] = int(wal[0])
    return out


def drop_under_sends(bench: Bench, backend: Backend, db: Target, key: str) -> dict[str, Any]:
    """Runs of the send load before, during and after the drop (CONCURRENTLY)."""
    seconds = bench.opts.seconds
    dropped: dict[str, Any] = {}
    failed: list[BaseException] = []

    def drop_later() -> None:
        time.sleep(seconds / 3)
        try:
            dropped.update(drop_old(db, concurrently=True))
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)

    runs: dict[str, wrk.Run] = {}
    with bench.servers.batgate("pg-partitions-api", db, workers=False) as server:
        load = wrk.Load(
            f"{server.url}/bat/messagelist",
            bench.send_script,
            [str(bench.send_bodies_file()), key],
            SEND_CONNECTIONS,
        )
        if bench.opts.warmup > 0:
            wrk.run_once(load, bench.opts.warmup)
        for name in ("before", "during", "after"):
            thread = threading.Thread(target=drop_later) if name == "during" else None
            if thread is not None:
                thread.start()
            runs[name] = wrk.run_once(load, seconds)
            if thread is not None:
                thread.join()
            if runs[name].failures:
                raise BenchError(f"partitions, {name}: failed requests {runs[name].errors}")
    if failed:
        raise BenchError(f"partitions: the drop under load failed: {failed[0]}")
    return {
        "drop": dropped,
        "runs": {name: {"rps": round(r.rps, 1)} | _lat(r) for name, r in runs.items()},
    }


def _lat(r: wrk.Run) -> dict[str, float]:
    return {f"{k}_ms": round(r.latency_us[k] / 1000, 1) for k in ("p50", "p99", "max")}


def run(
    bench: Bench, backend: Backend, db: Target, key: str, alone: dict[str, Any]
) -> dict[str, Any]:
    """Partition `db` (a copy of the retention database before any purge or send),
    drop the old day with and without load; the figures, and rows beside the purge's."""
    from retention import AGE_DAYS

    cut = boundary(AGE_DAYS - 1)
    log(f"{backend.label} partitions: rebuilding messages and events as partitioned tables")
    built = partition(db, cut)
    built["analyze_s"] = round(backend.analyze(db), 1)
    load_db = backend.copy(db, "retention-part-load")
    quiet = drop_old(db, concurrently=False)
    log(f"{backend.label} partitions: detach + drop with nothing running: {quiet['seconds']:.2f} s")
    loaded = drop_under_sends(bench, backend, load_db, key)
    doc = {"built": built, "quiet": quiet, "under_sends": loaded}
    _rows(bench, backend, doc, alone)
    return doc


def _rows(bench: Bench, backend: Backend, doc: dict[str, Any], alone: dict[str, Any]) -> None:
    q, built = doc["quiet"], doc["built"]
    n = built["rows"]["messages_old"]
    events = built["rows"]["message_events_old"]
    delete = f"batched DELETEs: {alone['seconds']:.0f} s"
    if "wal_bytes" in alone:
        delete += f", {alone['wal_bytes'] / 2**20:,.0f} MB of WAL"
        delete += f", then VACUUM {alone['vacuum_s']:.1f} s"
    detach = q["messages_detach_s"] + q["message_events_detach_s"]
    drop = q["messages_drop_s"] + q["message_events_drop_s"]
    bench.results.rows.append(
        Row(
            f"{backend.label}: remove one day, {n:,} messages + {events:,} events",
            f"{delete}; partitions: DETACH {detach * 1000:,.0f} ms + DROP {drop * 1000:,.0f} ms, "
            f"{q['wal_bytes'] / 2**10:,.0f} kB of WAL ({q['bytes'] / 2**20:,.0f} MB freed)",
        )
    )
    u = doc["under_sends"]
    r, d = u["runs"], u["drop"]
    rate = {name: f"{r[name]['rps'] * 100:,.0f}" for name in r}
    top = {name: f"{r[name]['max_ms']:,.0f}" for name in r}
    bench.results.rows.append(
        Row(
            f"{backend.label}: send while a partition is dropped (DETACH CONCURRENTLY + DROP)",
            f"{rate['during']} msg/s during, {rate['before']} before, {rate['after']} after; "
            f"max {top['during']} ms during (before {top['before']}, after {top['after']}); "
            f"the detach and drop took {d.get('seconds', float('nan')) * 1000:,.0f} ms under load",
            f"{r['during']['p50_ms']:.0f} ms",
            f"{r['during']['p99_ms']:.0f} ms",
        )
    )
