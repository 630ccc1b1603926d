"""The yardstick of the SMPP phase: the plainest asyncio client that can be written.

Binds once, keeps `--window` submit_sm in flight with hand-packed PDUs, answers
every deliver_sm at once, and reports submit_sm/s from the first submit to the
last submit_sm_resp (and when the last receipt came). No batgate code: what the
connector does on top of this — text encoding, parts, outcomes, the store — is
what the phase's ratio prices.

    python bench/smpp_bare.py --port P --messages N --window W   → one JSON line
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time

HEADER = struct.Struct(">IIII")
BIND_TRANSCEIVER, SUBMIT_SM, DELIVER_SM, RESP = 0x09, 0x04, 0x05, 0x80000000


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def submit_body(destination: str, text: bytes) -> bytes:
    return (
        cstr("")
        + bytes((5, 0))
        + cstr("Shop")
        + bytes((1, 1))
        + cstr(destination)
        + bytes((0, 0, 0))
        + cstr("")
        + cstr("")
        + bytes((1, 0, 0, 0, len(text)))
        + text
    )


class Bare(asyncio.Protocol):
    def __init__(self, messages: int, window: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.bound = self.loop.create_future()
        self.done = self.loop.create_future()
        self.messages, self.window = messages, window
        self.sent = self.answered = self.receipts = self.refused = 0
        self.started = self.finished = self.last_receipt = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        body = cstr("bare") + cstr("pw") + cstr("") + bytes((0x34, 0, 0)) + cstr("")
        self.write(BIND_TRANSCEIVER, body, 1)

    def write(self, command: int, body: bytes, sequence: int, status: int = 0) -> None:
        assert self.transport is not None
        self.transport.write(HEADER.pack(16 + len(body), command, status, sequence) + body)

    def submit_more(self) -> None:
        while self.sent < self.messages and self.sent - self.answered < self.window:
            self.sent += 1
            destination = f"3805{self.sent % 1_000_000:06d}45"  # never a magic ending
            self.write(SUBMIT_SM, submit_body(destination, b"Order confirmed"), self.sent + 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 16:
            length, command, status, sequence = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < length:
                return
            del self.buffer[:length]
            if command == BIND_TRANSCEIVER | RESP:
                self.started = time.perf_counter()
                self.bound.set_result(status)
                self.submit_more()
            elif command == SUBMIT_SM | RESP:
                self.answered += 1
                self.refused += status != 0
                if self.answered == self.messages:
                    self.finished = time.perf_counter()
                    self.done.set_result(None)
                self.submit_more()
            elif command == DELIVER_SM:
                self.receipts += 1
                self.last_receipt = time.perf_counter()
                self.write(DELIVER_SM | RESP, b"\x00", sequence)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--receipts", action="store_true", help="also wait for every receipt")
    a = p.parse_args()
    loop = asyncio.get_running_loop()
    transport, bare = await loop.create_connection(
        lambda: Bare(a.messages, a.window), "127.0.0.1", a.port
    )
    await bare.bound
    await bare.done
    if a.receipts:
        deadline = time.monotonic() + 60
        while bare.receipts < a.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    transport.close()
    seconds = bare.finished - bare.started
    print(
        json.dumps(
            {
                "messages": a.messages,
                "window": a.window,
                "seconds": round(seconds, 3),
                "submits_per_s": round(a.messages / seconds),
                "refused": bare.refused,
                "receipts": bare.receipts,
                "receipts_seconds": round(bare.last_receipt - bare.started, 3),
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
