"""(f) smpp: batgate through SMPP to a local SMSC (tests/peers/smsc34.py: smpp34's Rust
server driven by our script), on SQLite.

1. The yardstick: bench/smpp_bare.py, the plainest asyncio client, submit_sm/s with
   window 1 and 64, against the SMSC answering with a DELIVRD receipt each.
2. The connector alone (bench/smpp_connector.py): the same load through
   `SmppConnector.send()`; its share of the yardstick is the target (≥ 50 %).
3. End to end: `batgate serve` (engine on) with SMS routed to the SMSC; messages are
   sent in batches of 100 through `POST /bat/messagelist`, one after another as each
   is answered. A message is delivered when its final status is written (the moment
   `GET /bat/message/{id}` shows it), read from the database file outside the
   server, so that watching costs the server nothing; at the end every message is
   checked through `POST /bat/message/status`. Throughput is messages over the time
   from the first request to the last delivery; latency each message's time from its
   request's answer to its final write.

The SMSC and the load generator share CPU 0, the client under test has CPU 1.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import seeding
from procs import LOCALHOST, BenchError, Child, Processes, free_port, log, pinned
from report import Row
from servers import SERVER_CPU, Servers, base_env

PEER = Path(__file__).resolve().parents[1] / "tests" / "peers" / "smsc34.py"
PEER_CPU = 0
BATCH = 100
MIN_SHARE = 0.50  # the connector's submit_sm/s against the bare client's
# Destinations the SMSC treats specially (failures, throttling, holding): not in the load.
SMSC_ENDINGS = frozenset(f"{n:04d}" for n in range(1, 11))


def start_peer(procs: Processes, *options: str) -> tuple[Child, int, int]:
    port, control = free_port(), free_port()
    argv = [sys.executable, str(PEER), "--port", str(port), "--control-port", str(control)]
    child = procs.start("smsc34", [*argv, "--no-records", *options], base_env(), PEER_CPU)
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


async def _send_all(url: str, key: str, bodies: list[bytes]) -> tuple[dict[str, float], float]:
    """The batches, one after another as each is answered; each message's answer time."""
    headers = {"X-Authorization-Key": key, "Content-Type": "application/json"}
    accepted_at: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        started = time.time()
        for body in bodies:
            answer = await client.post("/bat/messagelist", content=body)
            if answer.status_code != 200:
                raise BenchError(f"send: HTTP {answer.status_code}: {answer.text[:300]}")
            at = time.time()
            for entry in answer.json()["messages"]:
                accepted_at[entry["messageId"]] = at
    return accepted_at, started


def _final_writes(db: Path) -> dict[str, tuple[str, float]]:
    """Each message's status and the time of its last write (read-only, outside the server)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT id, status, updated_at FROM messages")
        return {i: (status, at) for i, status, at in rows}
    finally:
        conn.close()


def _visible(url: str, key: str, ids: list[str]) -> int:
    """How many of `ids` `POST /bat/message/status` shows delivered (1,000 a request)."""
    headers = {"X-Authorization-Key": key}
    seen = 0
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for k in range(0, len(ids), 1000):
            answer = client.post("/bat/message/status", json={"messageIds": ids[k : k + 1000]})
            seen += sum(d.get("deliverystatus") == "delivered" for d in answer.json()["messages"])
    return seen


def end_to_end(servers: Servers, port: int, window: int, bodies: list[bytes]) -> dict[str, Any]:
    db, key = servers.new_db(f"smpp-w{window}")
    config = db.with_suffix(".toml")
    config.write_text(carrier_toml(port, window))
    env = {"BATGATE_CONFIG": str(config)}
    with servers.batgate(f"smpp-w{window}", db, workers=True, env=env) as server:
        accepted_at, started = asyncio.run(_send_all(server.url, key, bodies))
        deadline = time.monotonic() + 900
        while seeding.not_final(db):
            if time.monotonic() > deadline:
                raise BenchError(f"smpp: {seeding.not_final(db)} messages not final in 900 s")
            time.sleep(0.05)
        final = _final_writes(db)
        visible = _visible(server.url, key, list(accepted_at))
    delivered = {i: at for i, (status, at) in final.items() if status == "delivered"}
    if visible != len(delivered):
        raise BenchError(f"smpp: {len(delivered)} delivered in the database, {visible} by GET")
    latencies = sorted(delivered[i] - accepted_at[i] for i in delivered if i in accepted_at)
    seconds = max(delivered.values()) - started
    return {
        "messages": len(accepted_at),
        "delivered": len(delivered),
        "not_delivered": len(accepted_at) - len(delivered),
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(delivered) / seconds),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


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
