"""The cost of one status request inside the process, without a socket or wrk.

    python bench/inprocess.py [--requests N] [--rounds R] [--access-log off|json|text]
                              [--message delivered|processing] [--cache N]
                              [--database-url URL] [--profile TOP] [--way asgi|direct]

Calls the ASGI app (`create_app`, as `batgate serve --no-workers` builds it) with
`GET /bat/message/{id}` and a `send` that does nothing, so what is timed is
batgate's own work per request: the fast path, auth and rate-limit look-ups, the
request id, the metrics, the status read (from the cache of final answers for a
delivered message by default; from the database with `--message processing` or
`--cache 0`) and, when switched on, the access log line (written to a scratch
file). Prints µs per request in CPU time (this process's, so other work on the
machine disturbs it little) and in wall-clock time, the minimum and the median
over the rounds; with `--profile`, one more round under cProfile and its top
functions by own time. The database is a scratch SQLite file unless
`--database-url` names an empty one (PostgreSQL). `--way direct` calls the app as
the HTTP protocol's shortcut does (`respond_now`: SQLite, no ASGI messages). Used
to keep the per-request cost of observability in check (docs/operations.md,
Observability) and to see where a lookup's microseconds go (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

from batgate.api.app import create_app
from batgate.config import Settings
from batgate.domain.credentials import key_hash, new_webhook_secret
from batgate.domain.lifecycle import Transition, on_due, on_sent
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.domain.outcomes import Accepted, ScheduledReceipt
from batgate.domain.retry import RetryPolicy
from batgate.domain.status import ChannelStatus
from batgate.observability import logs
from batgate.store.manager import Store

KEY = "bench-key"
NO_RETRY = RetryPolicy((1.0,))


async def bench_message(url: str, final: bool) -> str:
    """One account and one SMS written through the store and the state machine:
    delivered, or (not `final`) handed over with its receipt an hour away."""
    store = Store.connect(url)
    await store.upgrade()
    try:
        account = await store.create_account(
            "bench", key_hash(KEY), None, None, new_webhook_secret(), "USD"
        )
        now = time.time()
        step = Step(MessageType.SMS, "+380501234567", "bench", "hi", None, 3600, 1)
        _, (mid,) = await store.insert_batch(account, [NewMessage(None, (step,))], now)
        (record,) = await store.claim_due("bench", now, 60.0, 1)
        receipt = ScheduledReceipt(ChannelStatus.DELIVERED, now + (0 if final else 3600))
        handed = on_sent(record.progress, Accepted("ref", receipt), record.chain, NO_RETRY, now)
        await store.apply(record, handed, now)
        if not final:
            return mid
        record = await store.get_message(mid)
        done = None if record is None else on_due(record.progress, record.chain, now)
        if record is None or not isinstance(done, Transition):
            raise RuntimeError("the bench message did not get its receipt")
        await store.apply(record, done, now)
        return mid
    finally:
        await store.close()


async def measure(a: argparse.Namespace, work: Path) -> tuple[list[float], list[float]]:
    url = a.database_url or f"sqlite:///{work / 'bench.db'}"
    mid = await bench_message(url, final=a.message == "delivered")
    # No engine (nothing else runs in the process); no rate limit, as in `make bench`.
    settings = Settings(database_url=url, rate_limit={"enabled": False}, status_cache_size=a.cache)
    app = create_app(settings, workers=False)
    async with LifespanManager(app):
        if a.access_log != "off":
            out = (work / "access.log").open("w")
            fmt: logs.LogFormat = "json" if a.access_log == "json" else "text"
            logs.configure(fmt, "INFO", access_log=True, stream=out)
        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/bat/message/{mid}",
            "raw_path": f"/bat/message/{mid}".encode(),
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"x-authorization-key", KEY.encode()),
                (b"user-agent", b"wrk"),
            ],
            "http_version": "1.1",
            "scheme": "http",
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        answers: list[Any] = []

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                answers.append(message["status"])

        await app(scope, receive, send)  # the first answer puts a final one in the cache
        if answers:
            raise RuntimeError(f"the status request answered HTTP {answers[0]}")
        one = _one_request(app, scope, receive, send, a.way)
        cpu, wall = [], []
        for _ in range(a.rounds):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            for _ in range(a.requests):
                await one()
            cpu.append((time.process_time() - cpu_start) / a.requests * 1e6)
            wall.append((time.perf_counter() - wall_start) / a.requests * 1e6)
        if a.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(a.requests):
                await one()
            profiler.disable()
            top = pstats.Stats(profiler).sort_stats("tottime")
            top.print_stats(a.profile)
        return cpu, wall


def _one_request(
    app: Any, scope: dict[str, Any], receive: Any, send: Any, way: str
) -> Callable[[], Awaitable[Any]]:
    """One request the way asked: through the ASGI app, or as api.server's shortcut
    calls the app (`respond_now`), without the HTTP protocol around it."""
    if way == "asgi":
        return lambda: app(scope, receive, send)
    if not hasattr(app, "respond_now"):
        raise SystemExit("--way direct: this version of batgate has no shortcut")
    headers, message_id = scope["headers"], scope["path"].rsplit("/", 1)[1]

    async def direct() -> Any:
        response = app.respond_now(headers, message_id, True)
        if isinstance(response, asyncio.Future):
            response = await response
        if response is None or response[0] != 200:
            raise RuntimeError(f"the shortcut did not answer 200: {response}")
        return response

    return direct


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=50_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--access-log", choices=("off", "json", "text"), default="off")
    p.add_argument("--message", choices=("delivered", "processing"), default="delivered")
    p.add_argument("--cache", type=int, default=100_000, help="status_cache_size")
    p.add_argument("--database-url", help="an empty database (default: a scratch SQLite file)")
    p.add_argument("--profile", type=int, default=0, metavar="TOP")
    p.add_argument(
        "--way",
        choices=("asgi", "direct"),
        default="asgi",
        help="through the ASGI app, or as the HTTP protocol's shortcut calls it",
    )
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="batgate-inprocess-") as work:
        cpu, wall = asyncio.run(measure(a, Path(work)))
    print(
        f"{a.message}, cache {a.cache:,}, {a.way}, access log {a.access_log}, "
        f"µs per request over {a.rounds} × {a.requests:,}: "
        f"CPU min {min(cpu):.2f} median {statistics.median(cpu):.2f}; "
        f"wall min {min(wall):.2f} median {statistics.median(wall):.2f}"
    )


if __name__ == "__main__":
    main()
