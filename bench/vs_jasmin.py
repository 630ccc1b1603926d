"""`make bench-vs-jasmin`: batgate and Jasmin side by side — same machine, same SMSC, same load.

One after the other (batgate first), each gateway gets a fresh deployment and a fresh
SMSC (tests/peers/smsc34.py: smpp34's server, a DELIVRD receipt for every submit_sm)
for every measurement:

(a) HTTP submit, one message per request: Jasmin's `GET /send` (dlr-level 2, a DLR
    URL) against batgate's `POST /bat/messagelist` with one message, and batgate with
    100 — wrk, 32 connections, in rounds;
(b) end to end through ONE SMPP connection with receipts: at full speed (batgate:
    10 lists of 1,000 sent at once, done when every message is final in the
    database; Jasmin: /send from 16 concurrent clients, done when every DLR is in;
    also Jasmin with 4 connectors), and at a steady 20 messages/s for 30 s, one per
    request, latency from the request's answer to the callback saying delivered
    (batgate's webhook, Jasmin's DLR) at the receiver (bench/callbacks.py);
(c) CPU seconds per message and peak RSS of every process of each gateway during the
    full-speed run: `batgate serve`; jasmind, dlrlookupd, dlrd, RabbitMQ and Redis.

And, in the same run, batgate's status lookups against the bare-ASGI ceiling
(bench/phases.py's status phase, quick settings).

The gateway under test runs on CPU 1 (Jasmin's daemons are moved there after they
start; RabbitMQ and Redis are the system's services and run where the system puts
them); the SMSC, the load generator, wrk and the receiver on CPU 0. Prints one
table; writes bench/results/vs-jasmin.json and docs/bench-vs-jasmin.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent / "jasmin"))

import report  # noqa: E402
import seeding  # noqa: E402
import smpp  # noqa: E402
import wrk  # noqa: E402
from cpu import process_ticks  # noqa: E402
from jasmin_gateway import Jasmin, install  # noqa: E402
from phases import Bench, Options  # noqa: E402
from procs import LOCALHOST, BenchError, Processes, free_port, log, rss_kib, wait_ready  # noqa: E402
from servers import SERVER_CPU, Server, Servers, base_env, batgate_argv  # noqa: E402

LOAD_CPU = 0
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
CALLBACKS_APP = Path(__file__).resolve().with_name("callbacks.py")
CHART = report.REPO / "docs" / "bench-vs-jasmin.png"
TEXT = "Your order #1001 is confirmed"
RATE = 20.0

# The targets of issue 7, each measured in this run.
MIN_BATCH_PER_S, MIN_BATCH_RATIO = 10_000, 25
MIN_E2E_PER_S, MIN_E2E_RATIO = 1_000, 30
MAX_P99_AT_20_S = 1.0
MAX_CPU_MS = 1.0
MIN_CEILING_SHARE = 0.50


@dataclass
class Settings:
    seconds: float
    runs: int
    warmup: float
    batgate_messages: int
    jasmin_messages: int
    steady_seconds: float
    status_messages: int
    quick: bool


@dataclass
class Figures:
    """What one gateway measured; None where a gateway has no such figure."""

    submit_one: wrk.Measurement | None = None
    submit_batch: wrk.Measurement | None = None
    e2e: dict[str, Any] = field(default_factory=dict)
    e2e_four: dict[str, Any] = field(default_factory=dict)
    steady: dict[str, Any] = field(default_factory=dict)


# -- processes: usage, receiver, SMSC ------------------------------------------------------


class Usage:
    """CPU ticks of a set of processes between `start` and `stop`, and the peak of the
    sum of their RSS, sampled every 100 ms meanwhile."""

    def __init__(self, pids: Callable[[], Sequence[int]]) -> None:
        self._pids = pids
        self._stop = threading.Event()
        self.peak_kib = 0
        self._before: dict[int, int] = {}
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self._before = {p: t for p in self._pids() if (t := process_ticks(p)) is not None}
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            total = 0
            for pid in self._pids():
                try:
                    total += rss_kib(pid)
                except (OSError, BenchError):
                    pass
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        """CPU seconds used since `start` (processes new since then: their whole life)."""
        self._stop.set()
        self._thread.join()
        used = 0
        for pid in self._pids():
            now = process_ticks(pid)
            if now is not None:
                used += now - self._before.get(pid, 0)
        return used / TICKS_PER_S


class Callbacks:
    """bench/callbacks.py in a process of its own, on the load generator's CPU."""

    def __init__(self, procs: Processes) -> None:
        self.port = free_port()
        argv = [sys.executable, str(CALLBACKS_APP), "--port", str(self.port)]
        self.child = procs.start("callbacks", argv, base_env(), LOAD_CPU)
        wait_ready(self.child, f"{self.url}/")

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def reset(self) -> None:
        httpx.post(f"{self.url}/reset", timeout=10)

    def count(self, status: str = "delivered") -> int:
        return int(
            httpx.get(f"{self.url}/count", params={"status": status}, timeout=10).json()["count"]
        )

    def dump(self) -> list[tuple[str, str, float]]:
        return [tuple(r) for r in httpx.get(f"{self.url}/dump", timeout=60).json()]  # type: ignore[misc]


@contextmanager
def smsc(procs: Processes) -> Iterator[int]:
    """A fresh SMSC (stale receipts of an earlier deployment would reach the next one)."""
    child, port, _control = smpp.start_peer(procs)
    try:
        yield port
    finally:
        procs.stop(child)


def pin(pids: Sequence[int], cpu: int) -> None:
    """Move processes, all their threads, to one CPU (taskset -a)."""
    if shutil.which("taskset") is None:
        return
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], capture_output=True)


# -- the load generator --------------------------------------------------------------------


@dataclass
class Sent:
    """What was sent: each message's id and when its request was answered (wall clock)."""

    at: dict[str, float] = field(default_factory=dict)
    first: float = 0.0
    last: float = 0.0


async def closed_loop(
    requests: Sequence[Callable[[httpx.AsyncClient], Any]], concurrency: int
) -> Sent:
    """Send the requests with `concurrency` in flight, each answer's ids recorded."""
    sent = Sent(first=time.time())
    queue = list(reversed(requests))

    async def lane(client: httpx.AsyncClient) -> None:
        while queue:
            ids = await queue.pop()(client)
            now = time.time()
            for i in ids:
                sent.at[i] = now

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(lane(client) for _ in range(concurrency)))
    sent.last = time.time()
    return sent


async def steady(
    request: Callable[[httpx.AsyncClient, int], Any], rate: float, seconds: float
) -> Sent:
    """Open loop: request n at start + n / rate, whether earlier ones were answered or not."""
    sent = Sent(first=time.time())
    count = int(rate * seconds)
    start = time.monotonic()

    async def one(client: httpx.AsyncClient, n: int) -> None:
        for i in await request(client, n):
            sent.at[i] = time.time()

    async with httpx.AsyncClient(timeout=120) as client:
        tasks = []
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, n)))
        await asyncio.gather(*tasks)
    sent.last = time.time()
    return sent


def latencies(sent: Sent, arrived: dict[str, float]) -> dict[str, float]:
    got = sorted(arrived[i] - t for i, t in sent.at.items() if i in arrived)
    if not got:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "received": 0}
    return {
        "p50_ms": round(1000 * statistics.median(got), 1),
        "p99_ms": round(1000 * got[int(0.99 * (len(got) - 1))], 1),
        "max_ms": round(1000 * got[-1], 1),
        "received": len(got),
        "sent": len(sent.at),
    }


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def numbers(count: int, seed: int = 11) -> list[str]:
    """Distinct valid numbers that no SMSC or sandbox treats specially."""
    pool = seeding.phone_pool(max(count, 1000), seed)
    return [n for n in pool if n[-4:] not in smpp.SMSC_ENDINGS][:count]


# -- batgate ---------------------------------------------------------------------------------


class Batgate:
    """`batgate serve` on a fresh SQLite database with SMS routed to an SMSC over SMPP."""

    def __init__(self, servers: Servers, work: Path) -> None:
        self.servers = servers
        self.work = work
        self._n = 0

    @contextmanager
    def serving(
        self, smsc_port: int, webhook: str | None = None
    ) -> Iterator[tuple[Server, str, Path]]:
        self._n += 1
        name = f"batgate-{self._n}"
        db, key = self.servers.new_db(name)
        if webhook is not None:
            _cli(db, "accounts", "set-webhook", "bench", webhook)
        config = db.with_suffix(".toml")
        config.write_text(smpp.carrier_toml(smsc_port, 64))
        env = {"BATGATE_CONFIG": str(config)}
        with self.servers.batgate(name, db, workers=True, env=env) as server:
            yield server, key, db


def _cli(db: Path, *args: str) -> None:
    env = base_env() | {"BATGATE_DATABASE_URL": f"sqlite:///{db}"}
    done = subprocess.run(
        [*batgate_argv(), *args], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"batgate {' '.join(args)}: {done.stderr}")


def _bodies(to: Sequence[str], per_request: int) -> list[bytes]:
    bodies = []
    for k in range(0, len(to), per_request):
        messages = [
            {"from": "Shop", "to": n, "type": "sms", "text": TEXT} for n in to[k : k + per_request]
        ]
        bodies.append(json.dumps({"messages": messages}, separators=(",", ":")).encode())
    return bodies


def batgate_submit(
    b: Batgate, procs: Processes, s: Settings, work: Path
) -> tuple[wrk.Measurement, wrk.Measurement]:
    """(a): one message per request, and 100, against one server, in rounds."""
    to = numbers(10_000)
    one, batch = work / "batgate-one.txt", work / "batgate-batch.txt"
    one.write_bytes(b"\n".join(_bodies(to, 1)) + b"\n")
    batch.write_bytes(b"\n".join(_bodies(to, 100)) + b"\n")
    script = wrk.build_script("send", work)
    with smsc(procs) as port, b.serving(port) as (server, key, _db):
        loads = {
            "one": wrk.Load(server.url, script, [str(one), key], 32),
            "batch": wrk.Load(server.url, script, [str(batch), key], 32),
        }
        m = wrk.measure_interleaved(loads, warmup=s.warmup, seconds=s.seconds, runs=s.runs)
    log(f"batgate submit: one {m['one'].rps:,.0f} req/s, batch {100 * m['batch'].rps:,.0f} msg/s")
    return m["one"], m["batch"]


def batgate_e2e(b: Batgate, procs: Processes, s: Settings) -> dict[str, Any]:
    """(b) full speed and (c): lists of 1,000 at once; done when all are final."""
    to = numbers(s.batgate_messages)
    bodies = _bodies(to, 1000)
    with smsc(procs) as port, b.serving(port) as (server, key, db):
        usage = Usage(lambda: [server.child.pid])
        headers = {"X-Authorization-Key": key, "Content-Type": "application/json"}

        def post(body: bytes) -> Callable[[httpx.AsyncClient], Any]:
            async def call(client: httpx.AsyncClient) -> list[str]:
                answer = await client.post(
                    f"{server.url}/bat/messagelist", content=body, headers=headers
                )
                return [m["messageId"] for m in answer.json()["messages"]]

            return call

        usage.start()
        sent = asyncio.run(closed_loop([post(body) for body in bodies], 2))
        seconds = wait_until(lambda: seeding.not_final(db) == 0, 900, "every message final")
        cpu = usage.stop()
        done_at = time.time()
        arrived = _final_times(db)
    n = len(sent.at)
    wall = done_at - sent.first
    out = {
        "messages": n,
        "seconds": round(wall, 2),
        "messages_per_s": round(n / wall),
        "accepted_in_s": round(sent.last - sent.first, 2),
        "drain_s": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_message": round(1000 * cpu / n, 3),
        "peak_rss_mb": round(usage.peak_kib / 1024, 1),
        "latency": latencies(sent, arrived),
    }
    log(f"batgate e2e: {out}")
    return out


def _final_times(db: Path) -> dict[str, float]:
    """Each message's final write, from the database (the moment GET would show it)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {i: t for i, t in conn.execute("SELECT id, updated_at FROM messages")}
    finally:
        conn.close()


def batgate_steady(
    b: Batgate, procs: Processes, s: Settings, callbacks: Callbacks
) -> dict[str, Any]:
    """(b) at 20/s: one message per request, latency to the `delivered` webhook."""
    to = numbers(int(RATE * s.steady_seconds), seed=23)
    callbacks.reset()
    with (
        smsc(procs) as port,
        b.serving(port, webhook=f"{callbacks.url}/hook") as (server, key, _db),
    ):
        headers = {"X-Authorization-Key": key, "Content-Type": "application/json"}
        bodies = _bodies(to, 1)

        async def request(client: httpx.AsyncClient, n: int) -> list[str]:
            answer = await client.post(
                f"{server.url}/bat/messagelist", content=bodies[n], headers=headers
            )
            return [m["messageId"] for m in answer.json()["messages"]]

        sent = asyncio.run(steady(request, RATE, s.steady_seconds))
        wait_until(lambda: callbacks.count() >= len(sent.at), 120, "every delivered webhook")
        arrived = {i: t for i, status, t in callbacks.dump() if status == "delivered"}
    out = latencies(sent, arrived)
    log(f"batgate at {RATE:g}/s: {out}")
    return out


# -- Jasmin ----------------------------------------------------------------------------------


@contextmanager
def jasmin(procs: Processes, connectors: int = 1) -> Iterator[Jasmin]:
    """A fresh Jasmin deployment on a fresh SMSC, its own daemons moved to the gateway CPU."""
    with smsc(procs) as port, Jasmin(port, connectors=connectors, log=log) as j:
        groups = j.pids()
        pin(
            [pid for k, group in groups.items() if k not in ("rabbitmq", "redis") for pid in group],
            SERVER_CPU,
        )
        yield j


def jasmin_pids(j: Jasmin) -> list[int]:
    return [pid for group in j.pids().values() for pid in group]


def jasmin_submit(
    procs: Processes, s: Settings, work: Path, callbacks: Callbacks
) -> wrk.Measurement:
    """(a): GET /send, one message each, dlr-level 2 to the receiver; wrk as for batgate."""
    with jasmin(procs) as j:
        base = len(j.http_url)
        paths = work / "jasmin-send.txt"
        paths.write_text(
            "".join(
                j.send_url(n, TEXT, f"{callbacks.url}/dlr")[base:] + "\n" for n in numbers(10_000)
            )
        )
        load = wrk.Load(j.http_url, wrk.build_script("get", work), [str(paths)], 32)
        m = wrk.measure(load, warmup=s.warmup, seconds=s.seconds, runs=s.runs)
    log(f"jasmin /send: {m.rps:,.0f} req/s")
    return m


def jasmin_e2e(
    procs: Processes, s: Settings, callbacks: Callbacks, connectors: int
) -> dict[str, Any]:
    """(b) full speed and (c): /send from 16 clients; done when every DLR is in."""
    to = numbers(s.jasmin_messages, seed=31)
    callbacks.reset()
    with jasmin(procs, connectors) as j:
        urls = [j.send_url(n, TEXT, f"{callbacks.url}/dlr") for n in to]
        usage = Usage(lambda: jasmin_pids(j))

        def get(url: str) -> Callable[[httpx.AsyncClient], Any]:
            async def call(client: httpx.AsyncClient) -> list[str]:
                return [j.message_id((await client.get(url)).text)]

            return call

        usage.start()
        sent = asyncio.run(closed_loop([get(u) for u in urls], 16))
        wait_until(lambda: callbacks.count() >= len(sent.at), 900, "every DLR")
        done_at = time.time()
        cpu = usage.stop()
        groups = {k: len(v) for k, v in j.pids().items()}
    arrived = {i: t for i, status, t in callbacks.dump() if status == "delivered"}
    n = len(sent.at)
    wall = done_at - sent.first
    out = {
        "connectors": connectors,
        "messages": n,
        "seconds": round(wall, 2),
        "messages_per_s": round(n / wall, 1),
        "accepted_in_s": round(sent.last - sent.first, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_message": round(1000 * cpu / n, 2),
        "peak_rss_mb": round(usage.peak_kib / 1024, 1),
        "processes": groups,
        "latency": latencies(sent, arrived),
    }
    log(f"jasmin e2e ({connectors} connector(s)): {out}")
    return out


def jasmin_steady(procs: Processes, s: Settings, callbacks: Callbacks) -> dict[str, Any]:
    to = numbers(int(RATE * s.steady_seconds), seed=37)
    callbacks.reset()
    with jasmin(procs) as j:
        urls = [j.send_url(n, TEXT, f"{callbacks.url}/dlr") for n in to]

        async def request(client: httpx.AsyncClient, n: int) -> list[str]:
            return [j.message_id((await client.get(urls[n])).text)]

        sent = asyncio.run(steady(request, RATE, s.steady_seconds))
        try:
            wait_until(lambda: callbacks.count() >= len(sent.at), 120, "every DLR")
        except BenchError as exc:
            log(f"jasmin at {RATE:g}/s: {exc}; counting those that came")
        arrived = {i: t for i, status, t in callbacks.dump() if status == "delivered"}
    out = latencies(sent, arrived)
    log(f"jasmin at {RATE:g}/s: {out}")
    return out


# -- the status lookups, in the same run -----------------------------------------------------


def status_share(servers: Servers, work: Path, s: Settings) -> dict[str, Any]:
    """batgate's status lookups against the bare-ASGI ceiling (bench/phases.py's phase)."""
    opts = Options(
        runs=s.runs,
        seconds=s.seconds,
        warmup=s.warmup,
        status_messages=s.status_messages,
        rss_messages=0,
        webhook_messages=0,
        phases=("status",),
        keep=False,
    )
    bench = Bench(opts, work, servers, {})
    bench.status()
    doc = bench.results.doc["status"]

    def pick(row: dict[str, Any]) -> dict[str, Any]:
        return {"rps": row["rps"], "share": row["share_of_ceiling"], "p99_ms": row["p99_ms"]}

    return {
        "ceiling_rps": round(bench.results.doc["ceiling"]["rps"]),
        "cached": pick(doc["cached"]),
        "database": pick(doc["database"]),
    }


# -- the table and the chart ---------------------------------------------------------------


def _ratio(ours: float, theirs: float) -> str:
    return f"×{ours / theirs:,.0f}" if theirs else "—"


def table(b: Figures, j: Figures, status: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    assert b.submit_one and b.submit_batch and j.submit_one
    send = j.submit_one.rps
    one, batch = b.submit_one.rps, 100 * b.submit_batch.rps
    rows = [
        (
            "(a) HTTP submit, 1 message per request",
            f"{send:,.0f} msg/s",
            f"{one:,.0f} msg/s",
            _ratio(one, send),
        ),
        (
            "(a) HTTP submit, batgate 100 per request",
            f"{send:,.0f} msg/s",
            f"{batch:,.0f} msg/s",
            _ratio(batch, send),
        ),
        (
            "(b) end to end, 1 SMPP connection, full speed",
            f"{j.e2e['messages_per_s']:,.1f} msg/s",
            f"{b.e2e['messages_per_s']:,} msg/s",
            _ratio(b.e2e["messages_per_s"], j.e2e["messages_per_s"]),
        ),
        (
            "(b) end to end, Jasmin with 4 connectors",
            f"{j.e2e_four['messages_per_s']:,.1f} msg/s",
            f"{b.e2e['messages_per_s']:,} msg/s (1 connection)",
            _ratio(b.e2e["messages_per_s"], j.e2e_four["messages_per_s"]),
        ),
        (
            f"(b) latency at {RATE:g} msg/s, p50 / p99",
            f"{j.steady['p50_ms']:,.0f} / {j.steady['p99_ms']:,.0f} ms",
            f"{b.steady['p50_ms']:,.0f} / {b.steady['p99_ms']:,.0f} ms",
            _ratio(j.steady["p99_ms"], b.steady["p99_ms"]) + " (p99)",
        ),
        (
            "(b) latency at full speed, p50 / p99",
            f"{j.e2e['latency']['p50_ms']:,.0f} / {j.e2e['latency']['p99_ms']:,.0f} ms",
            f"{b.e2e['latency']['p50_ms']:,.0f} / {b.e2e['latency']['p99_ms']:,.0f} ms",
            "",
        ),
        (
            "(c) CPU per message, all the gateway's processes",
            f"{j.e2e['cpu_ms_per_message']:.2f} ms",
            f"{b.e2e['cpu_ms_per_message']:.3f} ms",
            _ratio(j.e2e["cpu_ms_per_message"], b.e2e["cpu_ms_per_message"]),
        ),
        (
            "(c) peak RSS, all the gateway's processes",
            f"{j.e2e['peak_rss_mb']:,.0f} MB",
            f"{b.e2e['peak_rss_mb']:,.0f} MB",
            "",
        ),
    ]
    lines = ["| measurement | Jasmin 0.11.0 | batgate | batgate vs Jasmin |", "|---|---|---|---|"]
    lines += [f"| {a} | {x} | {y} | {r} |" for a, x, y, r in rows]
    targets = [
        (
            "accepted in batches",
            batch >= MIN_BATCH_PER_S and batch >= MIN_BATCH_RATIO * send,
            f"{batch:,.0f} msg/s, {_ratio(batch, send)} "
            f"(≥ {MIN_BATCH_PER_S:,}, ≥ ×{MIN_BATCH_RATIO})",
        ),
        (
            "end to end, one connection",
            b.e2e["messages_per_s"] >= MIN_E2E_PER_S
            and b.e2e["messages_per_s"] >= MIN_E2E_RATIO * j.e2e["messages_per_s"],
            f"{b.e2e['messages_per_s']:,} msg/s, "
            f"{_ratio(b.e2e['messages_per_s'], j.e2e['messages_per_s'])} "
            f"(≥ {MIN_E2E_PER_S:,}, ≥ ×{MIN_E2E_RATIO})",
        ),
        (
            f"p99 at {RATE:g}/s",
            b.steady["p99_ms"] < 1000 * MAX_P99_AT_20_S,
            f"{b.steady['p99_ms']:,.0f} ms (< {MAX_P99_AT_20_S * 1000:.0f} ms)",
        ),
        (
            "CPU per message",
            b.e2e["cpu_ms_per_message"] <= MAX_CPU_MS,
            f"{b.e2e['cpu_ms_per_message']:.3f} ms (≤ {MAX_CPU_MS} ms)",
        ),
        (
            "status lookups, final (cached)",
            status["cached"]["share"] >= MIN_CEILING_SHARE,
            f"{status['cached']['share']:.0%} of the bare-ASGI ceiling (≥ 50 %)",
        ),
        (
            "status lookups, from the database",
            status["database"]["share"] >= MIN_CEILING_SHARE,
            f"{status['database']['share']:.0%} of the ceiling (≥ 50 %)",
        ),
    ]
    lines += ["", "| target | result | |", "|---|---|---|"]
    lines += [f"| {name} | {text} | {'✓' if ok else '✗'} |" for name, ok, text in targets]
    doc = [{"what": a, "jasmin": x, "batgate": y, "ratio": r} for a, x, y, r in rows]
    doc += [{"target": name, "ok": ok, "result": text} for name, ok, text in targets]
    return "\n".join(lines), doc


def chart(b: Figures, j: Figures, path: Path) -> bool:
    """Four panels, log scale where the gap needs it; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no chart (make bench-vs-jasmin installs it)")
        return False
    assert b.submit_one and b.submit_batch and j.submit_one
    panels = [
        (
            "HTTP submit (msg/s, higher is better)",
            ["Jasmin /send", "batgate 1/req", "batgate 100/req"],
            [j.submit_one.rps, b.submit_one.rps, 100 * b.submit_batch.rps],
            True,
        ),
        (
            "End to end, 1 SMPP connection (msg/s)",
            ["Jasmin", "Jasmin ×4 conn.", "batgate"],
            [j.e2e["messages_per_s"], j.e2e_four["messages_per_s"], b.e2e["messages_per_s"]],
            True,
        ),
        (
            f"p99 latency at {RATE:g} msg/s (ms, lower is better)",
            ["Jasmin", "batgate"],
            [j.steady["p99_ms"], b.steady["p99_ms"]],
            True,
        ),
        (
            "CPU per message (ms, lower is better)",
            ["Jasmin", "batgate"],
            [j.e2e["cpu_ms_per_message"], b.e2e["cpu_ms_per_message"]],
            True,
        ),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for ax, (title, labels, values, log_scale) in zip(axes, panels, strict=True):
        colors = ["#b0b0b0" if lab.startswith("Jasmin") else "#2a7ab9" for lab in labels]
        bars = ax.bar(labels, values, color=colors)
        if log_scale:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:,.0f}" if value >= 10 else f"{value:.2f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    fig.suptitle("batgate vs Jasmin 0.11.0 — same machine, same SMSC, same load", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- main ----------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description="batgate vs Jasmin (docs/benchmarks.md).")
    p.add_argument("--quick", action="store_true", help="shorter runs, smaller loads")
    p.add_argument("--runs", type=int)
    p.add_argument("--seconds", type=float)
    a = p.parse_args(argv)
    return Settings(
        seconds=a.seconds or (4 if a.quick else 10),
        runs=a.runs or (1 if a.quick else 3),
        warmup=1 if a.quick else 3,
        batgate_messages=5_000 if a.quick else 20_000,
        jasmin_messages=300 if a.quick else 900,
        steady_seconds=15 if a.quick else 30,
        status_messages=20_000 if a.quick else 100_000,
        quick=a.quick,
    )


def main(argv: list[str] | None = None) -> int:
    s = parse(argv)
    try:
        wrk.wrk_version()
        install(log)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    machine = report.machine()
    work = Path(tempfile.mkdtemp(prefix="batgate-vs-jasmin-"))
    procs = Processes(work)
    servers = Servers(procs, work)
    b, j = Figures(), Figures()
    started = time.monotonic()
    try:
        callbacks = Callbacks(procs)
        gateway = Batgate(servers, work)
        log("batgate: (a) HTTP submit")
        b.submit_one, b.submit_batch = batgate_submit(gateway, procs, s, work)
        log("batgate: (b, c) end to end at full speed")
        b.e2e = batgate_e2e(gateway, procs, s)
        log(f"batgate: (b) end to end at {RATE:g}/s")
        b.steady = batgate_steady(gateway, procs, s, callbacks)
        log("batgate: status lookups against the ceiling")
        status = status_share(servers, work, s)
        log("jasmin: (a) HTTP submit")
        j.submit_one = jasmin_submit(procs, s, work, callbacks)
        log("jasmin: (b, c) end to end at full speed, 1 connector")
        j.e2e = jasmin_e2e(procs, s, callbacks, 1)
        log("jasmin: (b) end to end at full speed, 4 connectors")
        j.e2e_four = jasmin_e2e(procs, s, callbacks, 4)
        log(f"jasmin: (b) end to end at {RATE:g}/s")
        j.steady = jasmin_steady(procs, s, callbacks)
    except BenchError as exc:
        print(f"error: {exc}\n{procs.complaints()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    text, rows = table(b, j, status)
    drew = chart(b, j, CHART)
    doc = {
        "machine": machine | {"loadavg_at_end": report.loadavg()},
        "settings": s.__dict__,
        "batgate": {
            "submit_one": b.submit_one.to_json() if b.submit_one else None,
            "submit_batch": b.submit_batch.to_json() if b.submit_batch else None,
            "e2e": b.e2e,
            "steady": b.steady,
            "status": status,
        },
        "jasmin": {
            "version": "0.11.0",
            "submit_one": j.submit_one.to_json() if j.submit_one else None,
            "e2e": j.e2e,
            "e2e_four_connectors": j.e2e_four,
            "steady": j.steady,
        },
        "table": rows,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    path = report.write_json(doc, "vs-jasmin.json")
    m = machine
    print(
        f"\nbatgate vs Jasmin — {m['date']}, {m['cpu']} ({m['cores']} cores), commit "
        f"{(m['git_commit'] or '?')[:12]}{' (dirty)' if m['git_dirty'] else ''}; "
        f"CPUs {m['busy_before_start'] or 0:.0%} busy before the start\n\n{text}\n"
    )
    log(
        f"results in {path.relative_to(report.REPO)}"
        + (f", chart {CHART.relative_to(report.REPO)}" if drew else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
