"""batgate's SMPP connector alone, driven like the dispatcher drives it, against the same
SMSC as bench/smpp_bare.py: `send()` for every message with `--concurrency` in flight,
receipts stored in memory. Prints one JSON line: submit_sm/s and when the last receipt
was stored. The difference to the bare client is the connector's own cost.

    python bench/smpp_connector.py --port P --messages N --window W
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence

from batgate.channels.base import Outbound
from batgate.channels.smpp.connector import SmppConnector
from batgate.config import SmppSettings
from batgate.domain.inbound import InboundText
from batgate.domain.messages import MessageType, Step
from batgate.domain.outcomes import Accepted, PartReceipt


class Memory:
    """A receipt sink that keeps count: the connector's part of storing, without a database."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        self.count += len(receipts)
        self.last = time.perf_counter()

    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        """The SMSC of this bench sends no MO messages: none to keep."""


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=64, help="dispatcher.concurrency")
    a = p.parse_args()
    sink = Memory()
    settings = SmppSettings(
        kind="smpp", host="127.0.0.1", port=a.port, system_id="bench", window=a.window
    )
    connector = SmppConnector("bench", settings, sink)
    await connector.start()
    steps = [
        Step(MessageType.SMS, f"+3805{n:06d}45", "Shop", "Order confirmed", None, 3600, 1)
        for n in range(1000)
    ]
    limit = asyncio.Semaphore(a.concurrency)
    accepted = 0

    async def one(n: int) -> None:
        nonlocal accepted
        async with limit:
            result = await connector.send(Outbound(f"m{n}", steps[n % 1000], 1))
        accepted += isinstance(result, Accepted)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(a.messages)))
    seconds = time.perf_counter() - started
    deadline = time.monotonic() + 60
    while sink.count < accepted and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await connector.aclose()
    print(
        json.dumps(
            {
                "messages": a.messages,
                "window": a.window,
                "seconds": round(seconds, 3),
                "submits_per_s": round(a.messages / seconds),
                "accepted": accepted,
                "receipts": sink.count,
                "receipts_seconds": round(sink.last - started, 3),
            }
        )
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
