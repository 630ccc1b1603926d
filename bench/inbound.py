"""Phase `inbound`: mobile-originated messages from one SMPP connection to the owning
account's webhook receiver (issue 18: at least 1,000 messages/s, p99 under 1 s).

The test SMSC (tests/peers/smsc34.py, its `POST /mo` with `count`) sends the
messages over the one bind of `batgate serve`; each text carries the time it was
sent, and each message is done when its signed webhook was answered by the bench's
receiver (the event's `delivered_at`, read from the database after the run). Two
loads: a burst of N messages as fast as the SMSC writes them (the rate: N over the
time to the last webhook), and a steady 1,000 a second, the target rate (the latency of each).
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import smpp
from procs import LOCALHOST, BenchError, free_port, wait_ready
from report import Row
from servers import Servers, base_env
from webhooks import RECEIVER_APP, RECEIVER_CPU, _cli

MIN_PER_S = 1_000
MAX_P99_S = 1.0
OURS = "+380441230000"
STEADY_RATE = 1_000  # messages/s: the target rate


def _send(control: int, count: int, rate: float, tag: str) -> None:
    # Each from a phone of its own, as a burst from many phones comes: one phone's
    # messages are sent to the account one after another (docs/inbound.md).
    body = {"from": "+38050{i:07d}", "to": OURS, "text": tag + " {i} {t:.6f}"}
    body |= {"coding": "gsm7", "count": count, "rate": rate}
    deadline = time.monotonic() + 30
    while True:  # until the gateway has bound
        answer = httpx.post(f"http://{LOCALHOST}:{control}/mo", json=body, timeout=10)
        if answer.status_code == 200:
            return
        if answer.status_code != 409 or time.monotonic() > deadline:
            raise BenchError(f"inbound: the SMSC answered {answer.status_code}: {answer.text}")
        time.sleep(0.2)


def _done(db: Path, tag: str) -> list[tuple[float, float]]:
    """(sent, webhook answered) of each message of `tag` whose webhook was answered."""
    query = (
        "SELECT i.text, e.delivered_at FROM inbound_messages i JOIN message_events e "
        "ON e.webhook_id = 'in_' || i.id WHERE e.state = 'delivered' AND i.text LIKE ?"
    )
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(query, (tag + " %",)).fetchall()
    return [(float(text.rsplit(" ", 1)[1]), float(at)) for text, at in rows]


def _wait(db: Path, tag: str, count: int, timeout: float) -> list[tuple[float, float]]:
    deadline = time.monotonic() + timeout
    while True:
        done = _done(db, tag)
        if len(done) >= count:
            return done
        if time.monotonic() > deadline:
            raise BenchError(f"inbound: {len(done)} of {count} webhooks in {timeout:.0f} s")
        time.sleep(0.2)


def _latencies(done: list[tuple[float, float]]) -> dict[str, float]:
    lat = sorted(at - sent for sent, at in done)
    return {
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1),
    }


def run(servers: Servers, quick: bool) -> tuple[dict[str, Any], list[Row]]:
    procs = servers.procs
    burst = 2_000 if quick else 10_000
    steady = STEADY_RATE * (5 if quick else 10)
    peer, port, control = smpp.start_peer(procs)
    receiver_port = free_port()
    receiver = procs.start(
        "receiver",
        [sys.executable, str(RECEIVER_APP), "--port", str(receiver_port)],
        base_env(),
        RECEIVER_CPU,
    )
    try:
        wait_ready(receiver, f"http://{LOCALHOST}:{receiver_port}/")
        db, _key = servers.new_db("inbound")
        _cli(db, "accounts", "set-webhook", "bench", f"http://{LOCALHOST}:{receiver_port}/in")
        _cli(db, "accounts", "add-number", "bench", OURS)
        config = db.with_suffix(".toml")
        config.write_text(smpp.carrier_toml(port, 64))
        with servers.batgate("inbound", db, workers=True, env={"BATGATE_CONFIG": str(config)}):
            _send(control, burst, 0, "burst")
            done = _wait(db, "burst", burst, 600)
            first = min(sent for sent, _ in done)
            seconds = max(at for _, at in done) - first
            _send(control, steady, STEADY_RATE, "steady")
            calm = _wait(db, "steady", steady, 600)
    finally:
        procs.stop(receiver)
        procs.stop(peer)
    per_s = burst / seconds
    burst_doc = {"messages": burst, "seconds": round(seconds, 2), "per_s": round(per_s)}
    burst_doc |= _latencies(done)
    steady_doc = {"messages": steady, "rate": STEADY_RATE} | _latencies(calm)
    doc = {"burst": burst_doc, "steady": steady_doc}
    rows = [
        Row(
            f"inbound: {burst:,} MOs over one SMPP bind → signed webhooks answered",
            f"{per_s:,.0f} msg/s",
            f"{burst_doc['p50_ms']:.0f} ms",
            f"{burst_doc['p99_ms']:.0f} ms",
            f"≥ {MIN_PER_S:,}/s",
            per_s >= MIN_PER_S,
        ),
        Row(
            f"inbound at a steady {STEADY_RATE}/s: MO sent → webhook answered",
            f"{steady:,} messages",
            f"{steady_doc['p50_ms']:.0f} ms",
            f"{steady_doc['p99_ms']:.0f} ms",
            f"p99 < {MAX_P99_S * 1000:.0f} ms",
            steady_doc["p99_ms"] < MAX_P99_S * 1000,
        ),
    ]
    return doc, rows
