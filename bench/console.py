"""Phases `sqlite-console` / `pg-console`: the console on a big database (issue 19).

The database of 10,000 delivered messages grown to `--big-messages` (5,000,000;
cloning.py), with 30 days of the console's counts (`message_rollup`: an hour's slot
for every hour, a minute's for the last hour, as a steady gateway leaves them). One
`batgate serve --no-workers` serves it; an operator logs in. wrk asks, each for its
own timed runs with 4 connections (a few operators at once):

- a search by recipient (`/console/messages?to=…`, a number of the pool: ~500
  messages each, the newest 50 shown), target p99 < 100 ms;
- a search by message id (`?id=…`), target p99 < 100 ms;
- the overview of the last 30 days (`/console/?window=month`), target p99 < 200 ms.

Then the send rate (batches of 100, 32 connections) alone and while a reader
loads the console as ten operators would (each page every second), in rounds:
target < 5 % lost.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloning
import httpx
import wrk
from backends import Backend
from procs import log
from report import Row
from scratchdb import Target, connect, database_url, dialect
from servers import base_env, batgate_argv

if TYPE_CHECKING:
    from phases import Bench

CONNECTIONS = 4
OPERATORS = 10  # page loads a second, while the send rate is measured
PASSWORD = "bench-operator"
MAX_SEARCH_P99_MS = 100.0
MAX_OVERVIEW_P99_MS = 200.0
MAX_SEND_LOSS = 0.05


def seed_rollup(db: Target, now: float, per_hour: int = 7_000) -> int:
    """30 days of counts, as a gateway sending `per_hour` messages an hour leaves them."""
    rng = random.Random(19)
    hour, minute = int(now // 3600), int(now // 60)
    rows: list[tuple[Any, ...]] = []
    outcomes = (("delivered", 0.93), ("undeliverable", 0.05), ("permanenterror", 0.02))
    channels = (("sms", "carrier1"), ("sms", "carrier2"), ("viber", "upstream"))
    for scale, slots, first, share in (("h", 720, hour - 719, 1.0), ("m", 60, minute - 59, 1 / 60)):
        for slot in range(first, first + slots):
            for channel, connector in channels:
                for status, part in outcomes:
                    for bucket in (16, 18, 20, 22):
                        count = int(per_hour * share * part / 12 * rng.uniform(0.5, 1.5))
                        if count:
                            rows.append((scale, slot, 1, channel, connector, status, bucket, count))
    insert = (
        "INSERT INTO message_rollup (scale, slot, account_id, channel, connector, status, "
        "bucket, count) VALUES "
        + (
            "(?, ?, ?, ?, ?, ?, ?, ?)"
            if dialect(db) == "sqlite"
            else "(%s, %s, %s, %s, %s, %s, %s, %s)"
        )
    )
    with connect(db) as conn:
        if dialect(db) == "sqlite":
            conn.executemany(insert, rows)
            conn.commit()
        else:
            with conn.transaction():  # psycopg: autocommit would commit every row
                conn.cursor().executemany(insert, rows)
    return len(rows)


def session_cookie(url: str, db: Target) -> str:
    env = base_env() | {"BATGATE_DATABASE_URL": database_url(db)}
    subprocess.run(
        [*batgate_argv(), "operators", "create", "bench", "--password", PASSWORD],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        form = client.get("/console/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        if token is None:
            raise RuntimeError("the console's login form has no CSRF token")
        client.post(
            "/console/login",
            data={"csrf": token.group(1), "name": "bench", "password": PASSWORD},
        )
        value = client.cookies.get("batgate_console")
    if not value:
        raise RuntimeError("the bench operator could not log in")
    return f"batgate_console={value}"


def paths(work: Path, name: str, lines: list[str]) -> Path:
    path = work / f"console-{name}.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


async def _operators(url: str, cookie: str, pages: list[str], stop: asyncio.Event) -> int:
    """Load the console's pages as OPERATORS people would, one page a second each."""
    loaded = 0
    async with httpx.AsyncClient(base_url=url, headers={"Cookie": cookie}, timeout=30) as c:
        while not stop.is_set():
            started = time.monotonic()
            await asyncio.gather(*(c.get(random.choice(pages)) for _ in range(OPERATORS)))
            loaded += OPERATORS
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return loaded


def run(bench: Bench, backend: Backend) -> None:
    n = bench.opts.big_messages
    base = backend.delivered(bench.pool)
    db = backend.copy(base.db, "console")
    log(f"{backend.label} console: growing a copy to {n:,} messages")
    cloning.grow(db, n)
    seeded = seed_rollup(db, time.time())
    backend.analyze(db)
    ids = bench.work / f"{backend.name}-console-ids.txt"
    cloning.sample_ids(db, 20_000, ids)
    by_id = [f"/console/messages?id={i}" for i in ids.read_text().split()]
    by_to = [f"/console/messages?to=%2B{p[1:]}" for p in bench.pool]
    with bench.servers.batgate(f"{backend.name}-console", db, workers=False) as server:
        cookie = session_cookie(server.url, db)
        script = wrk.build_script("get", bench.work)
        loads = {
            name: wrk.Load(
                server.url, script, [str(paths(bench.work, name, lines)), cookie], CONNECTIONS
            )
            for name, lines in (
                ("recipient", by_to),
                ("id", by_id),
                ("overview", ["/console/?window=month"]),
            )
        }
        m = bench.measure(loads)
        sends = _send_beside_console(bench, server.url, base.key, cookie, by_to[:50] + by_id[:50])
    _report(bench, backend, n, seeded, m, sends)


def _send_beside_console(
    bench: Bench, url: str, key: str, cookie: str, pages: list[str]
) -> dict[str, wrk.Measurement]:
    send = wrk.Load(
        f"{url}/bat/messagelist", bench.send_script, [str(bench.send_bodies_file()), key], 32
    )
    alone = bench.measure({"alone": send})["alone"]
    stop = asyncio.Event()

    async def beside() -> tuple[wrk.Measurement, int]:
        reader = asyncio.create_task(_operators(url, cookie, pages, stop))
        measured = await asyncio.to_thread(bench.measure, {"beside": send})
        stop.set()
        return measured["beside"], await reader

    with_console, loaded = asyncio.run(beside())
    log(f"console: {loaded:,} console pages loaded while sends were measured")
    return {"alone": alone, "beside": with_console}


def _report(
    bench: Bench,
    backend: Backend,
    n: int,
    seeded: int,
    m: dict[str, wrk.Measurement],
    sends: dict[str, wrk.Measurement],
) -> None:
    loss = 1 - sends["beside"].rps / sends["alone"].rps if sends["alone"].rps else 0.0
    doc = {
        "messages": n,
        "rollup_rows": seeded,
        **{name: v.to_json() for name, v in m.items()},
        "send_alone": sends["alone"].to_json(),
        "send_beside_console": sends["beside"].to_json(),
        "send_loss": round(loss, 3),
    }
    bench.results.doc[f"{backend.name}_console"] = doc
    for name, what, limit in (
        ("recipient", "search by recipient", MAX_SEARCH_P99_MS),
        ("id", "search by message id", MAX_SEARCH_P99_MS),
        ("overview", "overview, last 30 days", MAX_OVERVIEW_P99_MS),
    ):
        v = m[name]
        bench.results.rows.append(
            Row(
                f"{backend.label} console, {n:,} messages: {what} ({CONNECTIONS} conns)",
                f"{v.rps:,.0f} pages/s",
                f"{v.p50_ms:.1f} ms",
                f"{v.p99_ms:.1f} ms",
                f"p99 < {limit:.0f} ms",
                v.p99_ms < limit,
            )
        )
    bench.results.rows.append(
        Row(
            f"{backend.label} console: sends (100/request) beside {OPERATORS} operators' pages/s",
            f"{sends['beside'].rps * 100:,.0f} vs {sends['alone'].rps * 100:,.0f} msg/s alone "
            f"({-loss:+.1%})",
            target=f"< {MAX_SEND_LOSS:.0%} lost",
            ok=loss < MAX_SEND_LOSS,
        )
    )
