"""Scale-out: send and status lookups with 1 and with 2 API processes on one database.

Three `batgate serve --no-workers` processes on one database: A and B on CPU 1,
C on CPU 0 (wrk's). One wrk (two threads, on CPU 0) drives three layouts in
rounds: A alone; A and B (two processes, one core: does a second process help
when the first waits on the database?); A and C (one process per core, the
second sharing its core with wrk and, on PostgreSQL, with the database). Each
thread talks to one process (targets.lua), so the load is split evenly and
the latencies are those of all requests together. Each run records the CPU
each party used (cpu.py), which says what limits the layout.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import cloning
import wrk
from backends import Backend
from procs import log
from report import Row
from scratchdb import Target
from servers import SERVER_CPU, Server

if TYPE_CHECKING:
    from phases import Bench

SEND_BATCH = 100
SEND_CONNECTIONS = 32
STATUS_CONNECTIONS = 64
WRK_THREADS = 2  # one per server in the two-process layouts; the same for one process
LAYOUTS = {
    "one": "1 API process",
    "two_same_core": "2 API processes, both on CPU 1",
    "two_cores": "2 API processes, one per CPU",
}


@contextmanager
def api_processes(
    bench: Bench, backend: Backend, db: Target, tag: str, env: dict[str, str] | None = None
) -> Iterator[dict[str, list[Server]]]:
    """Processes A, B (CPU 1) and C (CPU 0) serving `db`; the layouts' servers."""
    with ExitStack() as stack:

        def start(letter: str, core: int) -> Server:
            name = f"{backend.name}-{tag}-{letter}"
            return stack.enter_context(
                bench.servers.batgate(name, db, workers=False, env=env, cpu=core)
            )

        a, b, c = start("a", SERVER_CPU), start("b", SERVER_CPU), start("c", wrk.WRK_CPU)
        yield {"one": [a], "two_same_core": [a, b], "two_cores": [a, c]}


def loads(
    backend: Backend,
    db: Target,
    layouts: dict[str, list[Server]],
    path: str,
    script: Any,
    args: list[str],
    connections: int,
) -> dict[str, wrk.Load]:
    out = {}
    for name, servers in layouts.items():
        watch = backend.watch([s.child.pid for s in servers], db)
        out[name] = wrk.Load(
            f"{servers[0].url}{path}",
            script,
            args,
            connections,
            threads=WRK_THREADS,
            ports=tuple(s.port for s in servers),
            watch=watch,
        )
    return out


def send(bench: Bench, backend: Backend) -> None:
    db, key = backend.new_db("send-scale")
    bodies = bench.send_bodies_file()
    with api_processes(bench, backend, db, "send") as layouts:
        log(f"{backend.label} send: 1 vs 2 API processes")
        args = [str(bodies), key]
        m = bench.measure(
            loads(
                backend, db, layouts, "/bat/messagelist", bench.send_script, args, SEND_CONNECTIONS
            )
        )
    doc = _rows(bench, backend, "send", m, SEND_BATCH, SEND_CONNECTIONS)
    bench.results.doc[f"{backend.name}_send_scale"] = doc | {"batch": SEND_BATCH}


def status(bench: Bench, backend: Backend) -> None:
    n = bench.opts.status_messages
    base = backend.delivered(bench.pool)
    db = backend.copy(base.db, "status-scale")
    log(f"{backend.label} status: {n:,} delivered messages (copies of {base.messages:,})")
    grown = cloning.grow(db, n)
    analyze_s = backend.analyze(db)
    ids = bench.work / f"{backend.name}-status-scale-ids.txt"
    cloning.sample_ids(db, n, ids)
    env = {"BATGATE_STATUS_CACHE_SIZE": "0"}
    with api_processes(bench, backend, db, "status", env) as layouts:
        log(f"{backend.label} status (cache 0): 1 vs 2 API processes")
        args = [str(ids), base.key, "random", "0"]
        m = bench.measure(
            loads(
                backend, db, layouts, "/bat/message/", bench.status_script, args, STATUS_CONNECTIONS
            )
        )
    doc = _rows(bench, backend, "status (cache 0)", m, 1, STATUS_CONNECTIONS)
    bench.results.doc[f"{backend.name}_status_scale"] = doc | {
        "messages": n,
        "grown": grown,
        "analyze_s": round(analyze_s, 1),
    }


def cpu_text(c: dict[str, float]) -> str:
    """What the CPU did during the runs, in cores (medians of the runs)."""
    if not c:
        return ""
    each = [f"{v:.2f}" for k, v in c.items() if k.startswith("api_")]
    parts = [f"API {c.get('api', 0):.2f}" + (f" ({' + '.join(each)})" if each else "")]
    if "postgres" in c:
        pg = f"PostgreSQL {c['postgres']:.2f}"
        if c.get("postgres_exited", 0) >= 0.005:
            pg += f" (+{c['postgres_exited']:.2f} in backends that exited)"
        parts.append(pg)
    rest = c.get("other", 0) + c.get("postgres_other", 0)
    parts += [f"wrk {c.get('wrk', 0):.2f}", f"interrupts {c.get('interrupts', 0):.2f}"]
    parts.append(f"rest {rest:.2f}")
    cores = sorted(k for k in c if k.startswith("core"))
    text = f"CPU cores: {', '.join(parts)}; cores busy {'/'.join(f'{c[k]:.0%}' for k in cores)}"
    if "pg_sessions_per_s" in c:
        text += f"; {c['pg_sessions_per_s']:,.0f} PostgreSQL connections opened/s"
    return text


def transactions_text(c: dict[str, float], requests_per_s: float) -> str:
    """PostgreSQL transactions per HTTP request (from pg_stat_database)."""
    per_s = c.get("pg_transactions_per_s")
    if per_s is None or requests_per_s <= 0:
        return ""
    return f"; {per_s / requests_per_s:.1f} transactions/request"


def _rows(
    bench: Bench,
    backend: Backend,
    what: str,
    m: dict[str, wrk.Measurement],
    per_request: int,
    connections: int,
) -> dict[str, Any]:
    one = m["one"]
    doc: dict[str, Any] = {"connections": connections, "wrk_threads": WRK_THREADS}
    for name, label in LAYOUTS.items():
        r = m[name]
        # Each round's runs ran a minute apart at most: compare within rounds.
        ratio = statistics.median(
            x["rps"] / y["rps"] for x, y in zip(r.runs, one.runs, strict=True)
        )
        rate = r.rps * per_request
        unit = "msg/s" if per_request > 1 else "req/s"
        spread = f" [{r.rps_min * per_request:,.0f}–{r.rps_max * per_request:,.0f}]"
        result = f"{rate:,.0f} {unit}{spread}"
        if name != "one":
            result += f", ×{ratio:.2f} of 1 process"
        result += f"; {cpu_text(r.cpu)}{transactions_text(r.cpu, r.rps)}"
        bench.results.rows.append(
            Row(
                f"{backend.label} {what}, {label}, {connections} conns",
                result,
                _ms(r.p50_ms),
                _ms(r.p99_ms),
            )
        )
        log(f"{backend.label} {what}, {label}: {result}, p99 {r.p99_ms:.1f} ms")
        doc[name] = r.to_json() | {"per_s": round(rate), "ratio_to_one": round(ratio, 3)}
    return doc


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value * 1000:.0f} µs"
