"""logins: what a flood of wrong passwords costs the server, and a valid key's
status lookups meanwhile (`logins`, SQLite).

The issue's figures before the login guard (api/logins.py): 200 wrong passwords
at concurrency 20 pushed a server from 150 MB to 1.3 GB, and a valid key's
lookup from ~15 ms to 2 s (7.7 s max). Here: one account with an API key and a
password; 1,000 messages sent and delivered, so there is something to look up.
Then, for each flood, `--runs` times, a fresh `batgate serve` (CPU 1, engine
on and idle, `FORWARDED_ALLOW_IPS=127.0.0.1`: uvicorn takes X-Forwarded-For
from a loopback peer as the client's address), and from the harness (CPU 0):

- *lookups*: `GET /bat/message/{id}` with the valid key, at a steady 100 a
  second whatever the answers take (open loop: each request starts at its
  time; its latency counts from that time), ids at random, from an address of
  their own (X-Forwarded-For 198.51.100.7);
- after `--seconds` of lookups alone (the figures "without"), the flood:
  `--flood-requests` (200) `GET /bat/message/{id}` with Basic credentials and a
  wrong password each, 20 at a time (each of 20 lanes sends its next request
  when the last is answered); the lookups go on, and those started between the
  flood's first request and its last answer are the figures "during".

The floods: *one address* — the account's username, every request from
203.0.113.9 (the per-username and per-address buckets answer 429 after the
first failures); *many addresses* — every request with its own address
(10.0.x.y) and its own unknown username (an unknown username costs one Argon2
check too), so that only the cap on concurrent checks (`auth.password_checks`,
`auth.password_queue`) protects the server; *guard off* (a reference, not a
configuration anyone should run) — the many-address flood with the buckets,
the cap and the queue raised out of reach, as the server was before the guard;
run once, whatever `--runs` says, and its lookups may fail (time out) without
failing the phase.

Recorded: the server's RSS before the flood and its peak (VmHWM, the kernel's
high-water mark of the process), the lookups' p50/p99/max without and during
the flood (all runs' lookups pooled), the flood's answers (401, 429) and, from
/metrics, what each 429 was for (`batgate_auth_throttled_total{scope}`).
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import seeding
from extra_options import FLOOD_REQUESTS
from procs import BenchError, log
from report import Row
from servers import Server, create_account

if TYPE_CHECKING:
    from phases import Bench

USERNAME = "bench"
FLOOD_CONCURRENCY = 20
PROBE_RATE = 100.0  # lookups a second with the valid key
PROBE_WARMUP_S = 1.0  # the first lookups (connections opening) are not counted
SEED_BATCHES = 10  # 1,000 messages to look up
PROBE_ADDRESS = "198.51.100.7"
ONE_ADDRESS = "203.0.113.9"
FLOODS = {
    "one_address": "from one address, the account's username",
    "many_addresses": "each from its own address, with its own username",
    "guard_off": "each from its own address and username, guard off (reference)",
}
GUARD_OFF = {
    "BATGATE_AUTH__FAILURES_PER_ADDRESS": "1000000",
    "BATGATE_AUTH__FAILURES_PER_USERNAME": "1000000",
    "BATGATE_AUTH__PASSWORD_CHECKS": "1000",
    "BATGATE_AUTH__PASSWORD_QUEUE": "1000",
}
ISSUE_BEFORE = "before the guard (issue): 150 MB → 1.3 GB; lookups ~15 ms → 2 s (7.7 s max)"


def vm_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise BenchError(f"no {field_name} for pid {pid}")


@dataclass
class Lookup:
    at: float  # when it was due to start (monotonic)
    ms: float
    status: int  # 0: no answer (a transport error)


@dataclass
class FloodRun:
    flood: str
    lookups: list[Lookup] = field(default_factory=list)
    answers: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    throttled: dict[str, float] = field(default_factory=dict)
    failures: float = 0.0

    def window(self, during: bool) -> list[Lookup]:
        if during:
            return [x for x in self.lookups if self.started <= x.at <= self.ended]
        first = self.lookups[0].at + PROBE_WARMUP_S if self.lookups else 0.0
        return [x for x in self.lookups if first <= x.at < self.started]


async def _lookups(
    client: httpx.AsyncClient, key: str, ids: list[str], stop: asyncio.Event, out: list[Lookup]
) -> None:
    """GET /bat/message/{id} at PROBE_RATE until `stop`, each on its own task."""
    headers = {"X-Authorization-Key": key, "X-Forwarded-For": PROBE_ADDRESS}
    rng = random.Random(11)
    tasks: list[asyncio.Task[None]] = []

    async def one(due: float) -> None:
        try:
            resp = await client.get(f"/bat/message/{rng.choice(ids)}", headers=headers)
            status = resp.status_code
        except httpx.HTTPError:
            status = 0
        out.append(Lookup(due, (time.monotonic() - due) * 1000, status))

    due = time.monotonic()
    while not stop.is_set():
        tasks.append(asyncio.create_task(one(due)))
        due += 1 / PROBE_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    await asyncio.gather(*tasks)


async def _flood(
    client: httpx.AsyncClient, flood: str, target: str, count: int, answers: dict[int, int]
) -> None:
    """`count` wrong-password logins, FLOOD_CONCURRENCY lanes, each its next when answered."""
    queue = list(range(count))

    async def lane() -> None:
        while queue:
            i = queue.pop()
            if flood == "one_address":
                user, address = USERNAME, ONE_ADDRESS
            else:
                user, address = f"flood{i}", f"10.0.{i // 250}.{i % 250 + 1}"
            token = base64.b64encode(f"{user}:{secrets.token_urlsafe(12)}".encode()).decode()
            headers = {"Authorization": f"Basic {token}", "X-Forwarded-For": address}
            resp = await client.get(target, headers=headers)
            answers[resp.status_code] = answers.get(resp.status_code, 0) + 1

    await asyncio.gather(*(lane() for _ in range(FLOOD_CONCURRENCY)))


async def _metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """batgate_auth_throttled_total by scope, and batgate_auth_failures_total summed."""
    text = (await client.get("/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("batgate_auth_throttled_total{"):
            scope = line.split('scope="', 1)[1].split('"', 1)[0]
            out[scope] = out.get(scope, 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("batgate_auth_failures_total{"):
            out["failures"] = out.get("failures", 0.0) + float(line.rsplit(" ", 1)[1])
    return out


async def _scenario(
    server: Server, key: str, ids: list[str], flood: str, requests: int, seconds: float
) -> FloodRun:
    result = FloodRun(flood)
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=120.0, limits=limits) as probe,
        httpx.AsyncClient(base_url=server.url, timeout=60.0, limits=limits) as attacker,
    ):
        stop = asyncio.Event()
        lookups = asyncio.create_task(_lookups(probe, key, ids, stop, result.lookups))
        await asyncio.sleep(PROBE_WARMUP_S + seconds)
        before = await _metrics(attacker)
        result.rss_before_mb = vm_kib(server.child.pid, "VmRSS") / 1024
        result.started = time.monotonic()
        await _flood(attacker, flood, f"/bat/message/{ids[0]}", requests, result.answers)
        result.ended = time.monotonic()
        await asyncio.sleep(1.0)
        stop.set()
        await lookups
        after = await _metrics(attacker)
    result.rss_peak_mb = vm_kib(server.child.pid, "VmHWM") / 1024
    result.throttled = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "failures"}
    result.failures = after.get("failures", 0) - before.get("failures", 0)
    return result


def _seed(bench: Bench, db: Path, key: str) -> list[str]:
    with bench.servers.batgate("logins-seed", db, workers=True) as server:
        bodies = seeding.send_bodies(bench.pool, 100)
        seeded = seeding.seed(server.url, key, bodies, SEED_BATCHES, keep_ids=True)
        seeding.wait_final(db, timeout=300)
    return seeded.ids


def run(bench: Bench) -> None:
    requests = getattr(bench.opts, "flood_requests", FLOOD_REQUESTS)
    db = bench.work / "logins.db"
    key = create_account(db, USERNAME, secrets.token_urlsafe(16))
    ids = _seed(bench, db, key)
    env = {"FORWARDED_ALLOW_IPS": "127.0.0.1"}
    runs: dict[str, list[FloodRun]] = {name: [] for name in FLOODS}
    for r in range(bench.opts.runs):
        for flood in FLOODS:
            if flood == "guard_off" and r > 0:
                continue  # the reference, once: at ~1 s of one core a check, it is slow
            extra = GUARD_OFF if flood == "guard_off" else {}
            name = f"logins-{flood}-{r}"
            with bench.servers.batgate(name, db, workers=True, env=env | extra) as server:
                done = asyncio.run(_scenario(server, key, ids, flood, requests, bench.opts.seconds))
            _check(done, strict=flood != "guard_off")
            runs[flood].append(done)
            log(
                f"logins, {flood}: answers {done.answers}, RSS {done.rss_before_mb:.0f} → "
                f"{done.rss_peak_mb:.0f} MB, flood {done.ended - done.started:.2f} s"
            )
    doc: dict[str, Any] = {
        "flood_requests": requests,
        "concurrency": FLOOD_CONCURRENCY,
        "lookups_per_s": PROBE_RATE,
        "messages": len(ids),
        "floods": {name: _summary(bench, name, rs, requests) for name, rs in runs.items()},
    }
    bench.results.doc["logins"] = doc


def _check(done: FloodRun, strict: bool) -> None:
    bad = [x for x in done.lookups if x.status != 200]
    if bad and strict:
        raise BenchError(f"logins: {len(bad)} key lookups were not answered 200: {bad[:3]}")
    if sum(done.answers.values()) and set(done.answers) - {401, 429}:
        raise BenchError(f"logins: the flood got answers other than 401/429: {done.answers}")


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _lat(lookups: list[Lookup]) -> dict[str, float]:
    ms = [x.ms for x in lookups]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(_pct(ms, 50), 1),
        "p99_ms": round(_pct(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }


def _summary(bench: Bench, flood: str, rs: list[FloodRun], requests: int) -> dict[str, Any]:
    without = _lat([x for r in rs for x in r.window(during=False)])
    during = _lat([x for r in rs for x in r.window(during=True)])
    answers = {code: [r.answers.get(code, 0) for r in rs] for code in (401, 429)}
    scopes = sorted({k for r in rs for k in r.throttled})
    throttled = {s: [int(r.throttled.get(s, 0)) for r in rs] for s in scopes}
    flood_s = [round(r.ended - r.started, 2) for r in rs]
    rss_before = [round(r.rss_before_mb, 1) for r in rs]
    rss_peak = [round(r.rss_peak_mb, 1) for r in rs]
    doc: dict[str, Any] = {
        "label": FLOODS[flood],
        "lookups_not_200": sum(1 for r in rs for x in r.lookups if x.status != 200),
        "without": without,
        "during": during,
        "answers": answers,
        "throttled_by_scope": throttled,
        "failures_counted": [int(r.failures) for r in rs],
        "flood_seconds": flood_s,
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_peak,
    }
    med = statistics.median
    scope_text = ", ".join(f"{s} {med(v):.0f}" for s, v in throttled.items() if med(v))
    result = (
        f"401: {med(answers[401]):.0f}, 429: {med(answers[429]):.0f}"
        + (f" ({scope_text})" if scope_text else "")
        + f"; flood {med(flood_s):.2f} s; RSS {med(rss_before):.0f} → "
        f"peak {med(rss_peak):.0f} MB (max {max(rss_peak):.0f}); "
        f"key lookups during: p50 {during.get('p50_ms', 0):.1f}, p99 {during.get('p99_ms', 0):.1f}"
        f", max {during.get('max_ms', 0):.0f} ms (n {during['n']}); without: p50 "
        f"{without.get('p50_ms', 0):.1f}, p99 {without.get('p99_ms', 0):.1f}, "
        f"max {without.get('max_ms', 0):.0f} ms"
    )
    bench.results.rows.append(
        Row(
            f"logins: {requests} wrong passwords at concurrency {FLOOD_CONCURRENCY}, "
            f"{FLOODS[flood]}",
            result,
            f"{during.get('p50_ms', 0):.1f} ms",
            f"{during.get('p99_ms', 0):.1f} ms",
            ISSUE_BEFORE if flood == "guard_off" else "",
        )
    )
    return doc
