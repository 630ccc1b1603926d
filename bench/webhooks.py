"""(e) webhooks: signed webhook events delivered per second to a local receiver.

The events are made first and held: the account's endpoint is disabled while
`--webhook-messages` messages reach their final status (two events each:
`processing`, then `delivered`). Then the endpoint is enabled and the clock runs
until the outbox shows every event delivered. So the figure is the sender alone —
claim, sign, POST, record — with the receiver on the other core.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import seeding
from procs import LOCALHOST, BenchError, Processes, free_port, wait_ready
from report import Row
from servers import Servers, base_env, batgate_argv

MIN_WEBHOOKS_PER_S = 2_000
RECEIVER_CPU = 0
RECEIVER_APP = Path(__file__).resolve().with_name("receiver.py")


def _cli(db: Path, *args: str) -> str:
    out = subprocess.run(
        [*batgate_argv(), *args],
        env=base_env() | {"BATGATE_DATABASE_URL": f"sqlite:///{db}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"batgate {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def _events(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT state, count(*) FROM message_events GROUP BY state")
        return {state: int(n) for state, n in rows}
    finally:
        conn.close()


def _wait(db: Path, done: Any, what: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if done(_events(db)):
            return time.monotonic() - started
        time.sleep(0.2)
    raise BenchError(f"webhooks: {what} did not happen within {timeout:.0f} s: {_events(db)}")


def run(
    procs: Processes, servers: Servers, pool: list[str], messages: int, batch: int
) -> tuple[dict[str, Any], Row]:
    db, key = servers.new_db("webhooks")
    port = free_port()
    receiver = procs.start(
        "receiver",
        [sys.executable, str(RECEIVER_APP), "--port", str(port)],
        base_env(),
        RECEIVER_CPU,
    )
    try:
        wait_ready(receiver, f"http://{LOCALHOST}:{port}/")
        _cli(db, "accounts", "set-webhook", "bench", f"http://{LOCALHOST}:{port}/hook")
        _cli(db, "accounts", "set-webhook", "bench", "--disable")
        fast = {"BATGATE_SANDBOX__DELIVERY_DELAY": "0.2"}
        with servers.batgate("webhooks", db, workers=True, env=fast) as server:
            bodies = seeding.send_bodies(pool, batch)
            seeded = seeding.seed(server.url, key, bodies, messages // batch, keep_ids=False)
            seeding.wait_final(db, timeout=900)
            total = 2 * seeded.accepted
            _wait(db, lambda e: e.get("pending", 0) == total, "all events queued", 120)
            _cli(db, "accounts", "set-webhook", "bench", "--enable")
            seconds = _wait(db, lambda e: e.get("delivered", 0) == total, "delivery", 900)
            rss = server.rss_mb()
    finally:
        procs.stop(receiver)
    per_s = total / seconds
    ok = per_s >= MIN_WEBHOOKS_PER_S
    row = Row(
        f"webhooks: {total:,} signed events to a local receiver",
        f"{per_s:,.0f} events/s ({seconds:.1f} s)",
        target=f"≥ {MIN_WEBHOOKS_PER_S:,}/s",
        ok=ok,
    )
    doc = {
        "messages": seeded.accepted,
        "events": total,
        "seconds": round(seconds, 2),
        "events_per_s": round(per_s),
        "rss_mb_after": round(rss, 1),
        "ok": ok,
    }
    return doc, row
