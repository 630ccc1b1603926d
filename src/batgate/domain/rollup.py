"""The console's counts of final messages (`message_rollup`), pure: how a message that
went final is counted, and the percentiles read back from the counts.

A message is counted when it enters its final status, twice: in the minute and in
the hour it did (the overview reads minutes for the last hour, hours beyond), by
account, channel (of the step it ended on), connector (that took that step; "" when
none did) and status, with the time from its send to then in a half-octave bucket
(bucket b holds times from 2^((b-1)/2) to 2^(b/2) ms; bucket 0 under 1 ms). A
percentile read back is the upper edge of its bucket: within 19 % of the true time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from batgate.domain.lifecycle import Progress
from batgate.domain.records import MessageRecord

MAX_BUCKET: Final = 80  # 2^40 ms: beyond any TTL


@dataclass(frozen=True, slots=True)
class RollupKey:
    minute: int  # since the epoch; its hour is minute // 60
    account_id: int
    channel: str
    connector: str
    status: str
    bucket: int


def bucket_of(seconds: float) -> int:
    ms = seconds * 1000
    if ms < 1:
        return 0
    return min(MAX_BUCKET, int(2 * math.log2(ms)) + 1)


def bucket_upper_ms(bucket: int) -> float:
    return 1.0 if bucket <= 0 else 2 ** (bucket / 2)


def key_of(record: MessageRecord, progress: Progress, now: float) -> RollupKey:
    """How a message entering its final status (`progress`) at `now` is counted."""
    step = record.chain[progress.step]
    return RollupKey(
        minute=int(now // 60),
        account_id=record.account_id,
        channel=step.channel.value,
        connector=progress.connector or "",
        status=progress.status.value,
        bucket=bucket_of(now - record.created_at),
    )


def percentile_ms(counts: Mapping[int, int], fraction: float) -> float | None:
    """The `fraction` percentile (0.5, 0.99) of the times counted by bucket, in ms."""
    total = sum(counts.values())
    if total == 0:
        return None
    wanted = fraction * total
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= wanted:
            return bucket_upper_ms(bucket)
    return bucket_upper_ms(max(counts))


def summed(keys: Iterable[RollupKey]) -> dict[RollupKey, int]:
    found: dict[RollupKey, int] = {}
    for key in keys:
        found[key] = found.get(key, 0) + 1
    return found


def by_hour(keys: Iterable[RollupKey]) -> dict[RollupKey, int]:
    """The same counts by hour: each key with its minute at its hour's start."""
    return summed(
        RollupKey(
            minute=k.minute // 60 * 60,
            account_id=k.account_id,
            channel=k.channel,
            connector=k.connector,
            status=k.status,
            bucket=k.bucket,
        )
        for k in keys
    )
