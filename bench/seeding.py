"""Test traffic: a pool of recipients, send bodies, and seeding through the API.

Recipients are distinct valid Ukrainian mobile numbers (+38050 and seven digits),
drawn with a fixed seed. None ends in 0001-0005, the sandbox carrier's failure
endings, so every message is delivered in a couple of seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from procs import BenchError
from scratchdb import Target, scalar

_SANDBOX_ENDINGS = {f"{n:04d}" for n in range(1, 6)}
_FINAL = ("delivered", "undeliverable", "permanenterror")
_TEXTS = (
    "Your code is {n:06d}. Do not share it.",
    "Order #{n} is on its way; track it in the app.",
    "Hi! Your appointment is confirmed for tomorrow, ref {n}.",
    "Payment of {amount} UAH received. Thank you!",
)


def phone_pool(size: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(seed)
    found: set[str] = set()
    for _ in range(size * 10):  # bounded: collisions are rare at these sizes
        if len(found) == size:
            break
        number = f"+38050{rng.randrange(10_000_000):07d}"
        if number[-4:] not in _SANDBOX_ENDINGS:
            found.add(number)
    if len(found) != size:
        raise BenchError(f"could not draw {size} distinct numbers")
    return sorted(found, key=lambda _: rng.random())


def send_bodies(pool: Sequence[str], batch: int, seed: int = 7) -> list[bytes]:
    """Bodies of `batch` sms messages that together use every number of the pool once."""
    if len(pool) % batch:
        raise BenchError(f"the pool ({len(pool)}) is not a multiple of the batch ({batch})")
    rng = random.Random(seed)
    bodies: list[bytes] = []
    for start in range(0, len(pool), batch):
        messages = [
            {
                "from": "batgate",
                "to": to,
                "type": "sms",
                "text": rng.choice(_TEXTS).format(
                    n=rng.randrange(1_000_000), amount=rng.randrange(10, 5000)
                ),
            }
            for to in pool[start : start + batch]
        ]
        bodies.append(json.dumps({"messages": messages}, separators=(",", ":")).encode())
    return bodies


@dataclass
class Seeded:
    accepted: int
    seconds: float
    ids: list[str]

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds


async def _seed(
    url: str, api_key: str, bodies: Sequence[bytes], batches: int, concurrency: int, keep: bool
) -> Seeded:
    ids: list[str] = []
    accepted = 0
    headers = {"X-Authorization-Key": api_key, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def lane(client: httpx.AsyncClient, first: int) -> None:
        nonlocal accepted
        for k in range(first, batches, concurrency):
            resp = await client.post("/bat/messagelist", content=bodies[k % len(bodies)])
            if resp.status_code != 200:
                raise BenchError(f"seeding: HTTP {resp.status_code}: {resp.text[:300]}")
            entries = json.loads(resp.content)["messages"]
            for entry in entries:
                if entry["status"] != "accepted":
                    raise BenchError(f"seeding: a message was rejected: {entry}")
            accepted += len(entries)
            if keep:
                ids.extend(entry["messageId"] for entry in entries)

    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=120.0, limits=limits
    ) as client:
        await asyncio.gather(*(lane(client, i) for i in range(concurrency)))
    return Seeded(accepted, time.monotonic() - started, ids)


def seed(
    url: str,
    api_key: str,
    bodies: Sequence[bytes],
    batches: int,
    *,
    concurrency: int = 8,
    keep_ids: bool = False,
) -> Seeded:
    """Send `batches` requests (bodies in turn) through the API; the ids if `keep_ids`."""
    return asyncio.run(_seed(url, api_key, bodies, batches, concurrency, keep_ids))


def not_final(db: Target) -> int:
    """Stored messages whose status is not final yet (a read-only look at the database)."""
    final = ", ".join(f"'{status}'" for status in _FINAL)
    return int(scalar(db, f"SELECT count(*) FROM messages WHERE status NOT IN ({final})"))


def wait_final(db: Target, timeout: float) -> float:
    """Seconds until every stored message is final; BenchError after `timeout`."""
    started = time.monotonic()
    left = -1
    for _ in range(int(timeout) + 1):
        left = not_final(db)
        if left == 0:
            return time.monotonic() - started
        time.sleep(1.0)
    raise BenchError(f"{left} messages still not final after {timeout:.0f} s")
