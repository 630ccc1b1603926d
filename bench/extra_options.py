"""The options of the phases added after phases.Options was laid down: retention, logins.

run.py builds a RunOptions (phases.Options and these fields); the phases that need
them read them from `bench.opts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phases import Options

RETENTION_MESSAGES = 1_000_000
RETENTION_MESSAGES_QUICK = 200_000
FLOOD_REQUESTS = 200


@dataclass(frozen=True)
class Pair:
    """A `retention.batch_size` and `retention.pause` to purge with."""

    batch_size: int
    pause: float

    @property
    def label(self) -> str:
        return f"batch {self.batch_size:,}, pause {self.pause * 1000:g} ms"

    @property
    def tag(self) -> str:
        return f"{self.batch_size}-{self.pause:g}"


@dataclass
class RunOptions(Options):
    retention_messages: int = RETENTION_MESSAGES
    # Settings to purge with besides batgate's defaults (--retention-pairs).
    retention_pairs: tuple[Pair, ...] = field(default_factory=tuple)
    flood_requests: int = FLOOD_REQUESTS


def parse_pairs(text: str) -> tuple[Pair, ...]:
    """Pairs from "500:0.1,2000:0" (batch_size:pause); ValueError when malformed."""
    pairs = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        size, _, pause = item.partition(":")
        pair = Pair(int(size), float(pause or 0))
        if pair.batch_size < 1 or pair.pause < 0:
            raise ValueError(f"bad pair {item!r}")
        pairs.append(pair)
    return tuple(pairs)
