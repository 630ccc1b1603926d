"""(g) upstream: batgate whose carrier is another batgate, `kind = "smsbat"` (docs/carriers.md).

The upstream is a `batgate serve` on its own SQLite file with its sandbox, delivering
every message 50 ms after its hand-over, on CPU 0; the gateway under test (downstream)
has CPU 1, SMS routed to the upstream in batches with an Idempotency-Key, statuses by
the upstream's signed webhooks at `/callbacks/up`.

0. The yardstick: the same messages sent to the upstream alone (its own end-to-end
   rate on its one CPU bounds any rate through it).
1. Throughput: 8,000 SMS (2,000 with --quick) sent to the downstream in batches of
   100, one request after another; messages over the time from the first request to
   the last final write at the downstream (read from its database file); statuses by
   the upstream's webhooks, and again by polling.
2. Latency at a steady 20 messages/s: one message per request every 50 ms for 10 s;
   each message's time from its request's answer to its final write, p50 and p99.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import seeding
from procs import BenchError, log
from report import Row
from servers import Server, Servers, batgate_argv, db_env
from smpp import _final_writes, _send_all

UPSTREAM_CPU = 0
MIN_MESSAGES_PER_S = 2_000
MAX_P99_MS = 300.0
STEADY_RATE = 20  # messages/s
STEADY_SECONDS = 10
UPSTREAM_ENV = {
    "BATGATE_SANDBOX__DELIVERY_DELAY": "0.05",
    "BATGATE_SANDBOX__JITTER": "0",
    "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
}

# One tick of the dispatcher is one wave of hand-overs (docs/carriers.md, smsbat).
DOWNSTREAM_ENV = {"BATGATE_DISPATCHER__CONCURRENCY": "200"}


def _cli(db: Path, *args: str) -> str:
    done = subprocess.run(
        [*batgate_argv(), *args], env=db_env(db), capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"batgate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _connector_toml(upstream: Server, account: dict[str, str], webhooks: bool) -> str:
    statuses = (
        f'webhook_secret = "{account["webhookSecret"]}"\n'
        if webhooks
        else "poll_after = 0.1\npoll_interval = 0.1\n"
    )
    return (
        f'[connectors.up]\nkind = "smsbat"\nurl = "{upstream.url}"\n'
        f'api_key = "{account["apiKey"]}"\n{statuses}\n'
        '[[routes]]\nchannels = ["sms"]\nconnectors = ["up"]\n'
    )


def _wait_final(db: Path, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while seeding.not_final(db):
        if time.monotonic() > deadline:
            raise BenchError(f"upstream: {seeding.not_final(db)} {what} not final in {timeout} s")
        time.sleep(0.05)


def _latencies(db: Path, accepted_at: dict[str, float]) -> tuple[list[float], int]:
    final = _final_writes(db)
    delivered = {i: at for i, (status, at) in final.items() if status == "delivered"}
    latencies = sorted(delivered[i] - accepted_at[i] for i in accepted_at if i in delivered)
    return latencies, len(accepted_at) - len(latencies)


async def _steady(url: str, key: str, bodies: list[bytes]) -> dict[str, float]:
    """One body every 1/STEADY_RATE s, each sent on time whatever the answers take."""
    headers = {"X-Authorization-Key": key, "Content-Type": "application/json"}
    accepted_at: dict[str, float] = {}

    async def one(client: httpx.AsyncClient, body: bytes) -> None:
        answer = await client.post("/bat/messagelist", content=body)
        if answer.status_code != 200:
            raise BenchError(f"send: HTTP {answer.status_code}: {answer.text[:300]}")
        at = time.time()
        for entry in answer.json()["messages"]:
            accepted_at[entry["messageId"]] = at

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        started = time.monotonic()
        tasks = []
        for n, body in enumerate(bodies):
            await asyncio.sleep(max(0.0, started + n / STEADY_RATE - time.monotonic()))
            tasks.append(asyncio.create_task(one(client, body)))
        await asyncio.gather(*tasks)
    return accepted_at


def _percentile(values: list[float], share: float) -> float:
    return values[int(share * (len(values) - 1))]


def run(servers: Servers, pool: list[str], quick: bool) -> tuple[dict[str, Any], list[Row]]:
    count = 2_000 if quick else 8_000
    bodies = seeding.send_bodies(pool[:count], 100)
    singles = seeding.send_bodies(pool[count : count + STEADY_RATE * STEADY_SECONDS], 1)
    doc: dict[str, Any] = {"upstream": "batgate serve, sandbox delivering after 50 ms, CPU 0"}
    # The yardstick: the upstream alone, sent the same messages directly.
    alone_db, alone_key = servers.new_db("upstream-alone")
    env = UPSTREAM_ENV
    with servers.batgate("upstream-alone", alone_db, workers=True, env=env, cpu=UPSTREAM_CPU) as up:
        accepted_at, started = asyncio.run(_send_all(up.url, alone_key, bodies))
        _wait_final(alone_db, 300, "messages")
    doc["upstream_alone"] = _result(alone_db, accepted_at, started, "upstream alone")
    for phase, batches, webhooks in (
        ("throughput", bodies, True),
        ("throughput_polled", bodies, False),
        ("steady", singles, True),
    ):
        # A fresh upstream each time: no backlog of the last phase's webhooks.
        up_db, _ = servers.new_db(f"upstream-{phase}")
        account = json.loads(_cli(up_db, "accounts", "create", "downstream"))
        with servers.batgate(
            f"upstream-{phase}", up_db, workers=True, env=env, cpu=UPSTREAM_CPU
        ) as up:
            db, key = servers.new_db(f"downstream-{phase}")
            config = db.with_suffix(".toml")
            config.write_text(_connector_toml(up, account, webhooks))
            env_down = {"BATGATE_CONFIG": str(config), **DOWNSTREAM_ENV}
            with servers.batgate(f"downstream-{phase}", db, workers=True, env=env_down) as down:
                if webhooks:
                    _cli(up_db, "accounts", "set-webhook", "downstream", f"{down.url}/callbacks/up")
                if phase != "steady":
                    accepted_at, started = asyncio.run(_send_all(down.url, key, batches))
                else:
                    started = time.time()
                    accepted_at = asyncio.run(_steady(down.url, key, batches))
                _wait_final(db, 300, "messages")
            doc[phase] = _result(db, accepted_at, started, phase)
    return doc, _rows(doc)


def _result(db: Path, accepted_at: dict[str, float], started: float, what: str) -> dict[str, Any]:
    latencies, lost = _latencies(db, accepted_at)
    if lost:
        raise BenchError(f"upstream, {what}: {lost} messages not delivered")
    seconds = max(at for _, at in _final_writes(db).values()) - started
    result = {
        "messages": len(accepted_at),
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(accepted_at) / seconds),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
    }
    log(f"upstream: {what}: {result}")
    return result


def _rows(doc: dict[str, Any]) -> list[Row]:
    alone, s = doc["upstream_alone"], doc["steady"]
    rows = []
    for phase, how in (("throughput", "webhooks"), ("throughput_polled", "polled")):
        t = doc[phase]
        share = t["messages_per_s"] / alone["messages_per_s"]
        rows.append(
            Row(
                f"through an upstream batgate (smsbat kind, {how}): {t['messages']:,} SMS, "
                "POST → delivered written",
                f"{t['messages_per_s']:,} messages/s ({share:.0%} of the upstream alone: "
                f"{alone['messages_per_s']:,})",
                target=f"≥ {MIN_MESSAGES_PER_S:,}",
                ok=t["messages_per_s"] >= MIN_MESSAGES_PER_S,
                p50=f"{t['p50_ms']:.0f} ms",
                p99=f"{t['p99_ms']:.0f} ms",
            )
        )
    rows.append(
        Row(
            f"through an upstream batgate at a steady {STEADY_RATE} msg/s (50 ms at the "
            "upstream's sandbox included)",
            f"p99 {s['p99_ms']:.0f} ms",
            target=f"p99 < {MAX_P99_MS:.0f} ms",
            ok=s["p99_ms"] < MAX_P99_MS,
            p50=f"{s['p50_ms']:.0f} ms",
            p99=f"{s['p99_ms']:.0f} ms",
        )
    )
    return rows
