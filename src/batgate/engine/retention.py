"""Retention in the workers: old records removed in small batches, never blocking sends.

Every `interval` seconds (the first time a minute after start, or sooner with a
shorter interval) each kind of record past its age is removed a batch at a time,
`pause` seconds apart: a send or a status write waits at most one short batch
transaction. Several workers may run it at once: the batches are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from batgate.config import RetentionSettings
from batgate.observability import metrics
from batgate.store.handovers import KEEP_SECONDS
from batgate.store.retention import Retention

log = logging.getLogger(__name__)

DAY = 86_400.0
KEY_WINDOW = 86_400.0  # store.idempotency.Idempotency.window: a key answers for a day
KEY_GRACE = 3_600.0  # and is kept an hour past it
CARRIER_IDS_KEPT = KEEP_SECONDS  # carriers' ids of parts, and receipts none claimed
ROLLUP_MINUTES_KEPT = 2 * DAY  # the console's counts by minute (its last hour)
ROLLUP_HOURS_KEPT = 400 * DAY  # and by hour (its 30 days, and a year beside)

Batch = Callable[[int], Awaitable[int]]


class Janitor:
    def __init__(
        self,
        retention: Retention,
        settings: RetentionSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retention = retention
        self._settings = settings
        self._clock = clock

    async def run(self) -> None:
        await asyncio.sleep(min(60.0, self._settings.interval))
        while True:
            try:
                await self.once()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("retention failed")
            await asyncio.sleep(self._settings.interval)

    async def once(self) -> dict[str, int]:
        """One round: every kind of record due to go, batch by batch; how many went."""
        removed: dict[str, int] = {}
        for kind, batch in self._jobs(self._clock()):
            total = 0
            while True:
                done = await batch(self._settings.batch_size)
                total += done
                if done < self._settings.batch_size:
                    break
                await asyncio.sleep(self._settings.pause)
            if total:
                metrics.retention_removed(kind).inc(total)
                log.info("retention: %d %s", total, kind.replace("_", " "))
            removed[kind] = total
        return removed

    def _jobs(self, now: float) -> list[tuple[str, Batch]]:
        s, r = self._settings, self._retention
        keys_before = now - KEY_WINDOW - KEY_GRACE
        jobs: list[tuple[str, Batch]] = [
            ("idempotency_keys", lambda n: r.idempotency_keys(keys_before, n)),
            # Kept as long as an upstream keeps the keys they were sent with.
            ("upstream_batches", lambda n: r.upstream_batches(keys_before, n)),
        ]
        if s.redact_after_days:
            redact_before = now - s.redact_after_days * DAY
            jobs.append(("messages_redacted", lambda n: r.redact(redact_before, now, n)))
        if s.messages_days:
            messages_before = now - s.messages_days * DAY
            jobs.append(("messages", lambda n: r.messages(messages_before, n)))
        carriers_before = now - CARRIER_IDS_KEPT
        jobs.append(("carrier_ids", lambda n: r.carrier_ids(carriers_before, n)))
        # The console's counts: minutes for its last hour, hours for its 30 days.
        minutes_before = int((now - ROLLUP_MINUTES_KEPT) // 60)
        hours_before = int((now - ROLLUP_HOURS_KEPT) // 3600)
        jobs.append(("rollup_minutes", lambda n: r.rollup("m", minutes_before, n)))
        jobs.append(("rollup_hours", lambda n: r.rollup("h", hours_before, n)))
        if s.events_days:
            events_before = now - s.events_days * DAY
            jobs.append(("message_events", lambda n: r.events(events_before, n)))
            jobs.append(("webhook_attempts", lambda n: r.attempts(events_before, n)))
            jobs.append(("message_notes", lambda n: r.notes(events_before, n)))
        return jobs
