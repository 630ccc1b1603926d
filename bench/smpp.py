"""(f) smpp: batgate through SMPP to a local SMSC (tests/peers/smsc34.py: smpp34's Rust
server driven by our script), on SQLite.

1. The yardstick: bench/smpp_bare.py, the plainest asyncio client, submit_sm/s with
   window 1 and 64, against the SMSC answering with a DELIVRD receipt each.
2. The connector alone (bench/smpp_connector.py): the same load through
   `SmppConnector.send()`; its share of the yardstick is the target (≥ 50 %).
3. End to end: `batgate serve` (engine on) with SMS routed to the SMSC; messages are
   sent in batches of 100 through `POST /bat/messagelist`, and polled with
   `POST /bat/message/status` until each is seen `delivered`. Throughput is messages
   over the time from the first request to the last delivery seen; latency is each
   message's time from its request's answer to the poll that saw it delivered (polls
   every 20 ms, so latency reads up to ~20 ms high).

The SMSC and the load generator share CPU 0, the client under test has CPU 1.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from procs import LOCALHOST, BenchError, Child, Processes, free_port, log, pinned
from report import Row
from servers import SERVER_CPU, Servers, base_env

PEER = Path(__file__).resolve().parents[1] / "tests" / "peers" / "smsc34.py"
PEER_CPU = 0
BATCH = 100
POLL_EVERY = 0.02
MIN_SHARE = 0.50  # the connector's submit_sm/s against the bare client's
# Destinations the SMSC treats specially (failures, throttling, holding): not in the load.
SMSC_ENDINGS = frozenset(f"{n:04d}" for n in range(1, 11))


def start_peer(procs: Processes) -> tuple[Child, int, int]:
    port, control = free_port(), free_port()
    argv = [sys.executable, str(PEER), "--port", str(port), "--control-port", str(control)]
    child = procs.start("smsc34", [*argv, "--no-records"], base_env(), PEER_CPU)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{LOCALHOST}:{control}/healthz", timeout=1).status_code == 200:
                return child, port, control
        except httpx.TransportError:
            pass
        if child.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise BenchError(f"the SMSC did not start:\n{child.log_tail()}")


def _reset(control: int) -> None:
    httpx.post(f"http://{LOCALHOST}:{control}/reset", timeout=10)


def client_run(script: str, port: int, control: int, messages: int, window: int) -> dict[str, Any]:
    """bench/<script> on the server CPU, against the SMSC; its JSON line."""
    _reset(control)
    argv = [sys.executable, str(Path(__file__).with_name(script)), "--port", str(port)]
    argv += ["--messages", str(messages), "--window", str(window)]
    if script == "smpp_bare.py":
        argv.append("--receipts")
    done = subprocess.run(
        pinned(argv, SERVER_CPU), capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{script} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def carrier_toml(port: int, window: int) -> str:
    return (
        f'[connectors.smsc]\nkind = "smpp"\nhost = "{LOCALHOST}"\nport = {port}\n'
        f'system_id = "bench"\npassword = "bench"\nwindow = {window}\n\n'
        '[routes]\nsms = "smsc"\n'
    )


async def _end_to_end(url: str, key: str, bodies: list[bytes]) -> dict[str, Any]:
    headers = {"X-Authorization-Key": key, "Content-Type": "application/json"}
    accepted_at: dict[str, float] = {}
    delivered_at: dict[str, float] = {}
    other: dict[str, str] = {}
    sending_done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:

        async def send() -> None:
            for body in bodies:
                answer = await client.post("/bat/messagelist", content=body)
                at = time.perf_counter()
                if answer.status_code != 200:
                    raise BenchError(f"send: HTTP {answer.status_code}: {answer.text[:300]}")
                for entry in answer.json()["messages"]:
                    accepted_at[entry["messageId"]] = at
            sending_done.set()

        async def poll() -> None:
            while not (
                sending_done.is_set() and len(delivered_at) + len(other) == len(accepted_at)
            ):
                pending = [i for i in accepted_at if i not in delivered_at and i not in other]
                for k in range(0, len(pending), 1000):
                    chunk = pending[k : k + 1000]
                    answer = await client.post("/bat/message/status", json={"messageIds": chunk})
                    at = time.perf_counter()
                    for doc in answer.json()["messages"]:
                        status = doc.get("deliverystatus")
                        if status == "delivered":
                            delivered_at[doc["messageId"]] = at
                        elif status in ("undeliverable", "permanenterror"):
                            other[doc["messageId"]] = status
                await asyncio.sleep(POLL_EVERY)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(send(), poll()), timeout=900)
    latencies = sorted(delivered_at[i] - accepted_at[i] for i in delivered_at)
    seconds = max(delivered_at.values()) - started
    return {
        "messages": len(accepted_at),
        "delivered": len(delivered_at),
        "not_delivered": len(other),
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(delivered_at) / seconds),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


def end_to_end(servers: Servers, port: int, window: int, bodies: list[bytes]) -> dict[str, Any]:
    db, key = servers.new_db(f"smpp-w{window}")
    config = db.with_suffix(".toml")
    config.write_text(carrier_toml(port, window))
    with servers.batgate(
        f"smpp-w{window}", db, workers=True, env={"BATGATE_CONFIG": str(config)}
    ) as server:
        return asyncio.run(_end_to_end(server.url, key, bodies))


def run(
    servers: Servers, pool_bodies: list[bytes], quick: bool
) -> tuple[dict[str, Any], list[Row]]:
    procs = servers.procs
    peer, port, control = start_peer(procs)
    doc: dict[str, Any] = {"peer": "tests/peers/smsc34.py (smpp34 1.5 Server), receipts on"}
    rows: list[Row] = []
    try:
        submits = 5_000 if quick else 20_000
        for window in (1, 64):
            bare = client_run("smpp_bare.py", port, control, submits, window)
            ours = client_run("smpp_connector.py", port, control, submits, window)
            share = ours["submits_per_s"] / bare["submits_per_s"]
            doc[f"bare_w{window}"], doc[f"connector_w{window}"] = bare, ours
            rows.append(
                Row(
                    f"smpp: connector alone vs a bare asyncio client, window {window}",
                    f"{ours['submits_per_s']:,} vs {bare['submits_per_s']:,} submit_sm/s "
                    f"({share:.0%})",
                    target=f"≥ {MIN_SHARE:.0%}",
                    ok=share >= MIN_SHARE,
                )
            )
            log(f"smpp: window {window}: connector {ours} / bare {bare}")
        for window, batches in ((1, 10 if quick else 30), (64, 30 if quick else 100)):
            _reset(control)
            result = end_to_end(servers, port, window, pool_bodies[:batches])
            doc[f"end_to_end_w{window}"] = result
            rows.append(
                Row(
                    f"smpp end to end, window {window}: {result['messages']:,} messages, "
                    "POST → delivered seen by GET",
                    f"{result['messages_per_s']:,} messages/s",
                    p50=f"{result['p50_ms']:.0f} ms",
                    p99=f"{result['p99_ms']:.0f} ms",
                )
            )
            log(f"smpp: end to end, window {window}: {result}")
    finally:
        procs.stop(peer)
    return doc, rows
