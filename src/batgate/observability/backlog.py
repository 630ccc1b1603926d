"""The database gauges: the queue and the webhook backlog, read when Prometheus scrapes.

They describe the shared database, so every process exports the same values;
query one process's, or take `max` over them. A read is cached for `max_age`
seconds per process (concurrent scrapes share one read) and bounded by
`timeout`, so scraping stays cheap and never hangs on a slow database; ages
are computed at collection time from the cached timestamps, so they stay exact.

`refresh()` is awaited by the `/metrics` handler; `collect()` (synchronous, as
prometheus_client calls it) only formats the last reading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batgate.store.gauges import Backlog, Gauges

log = logging.getLogger(__name__)

_HELP = {
    "batgate_database_up": "1 if the database answered the last read of the gauges, else 0.",
    "batgate_gauges_read_seconds": "How long the last read of the database gauges took.",
    "batgate_queue_messages": "Messages the engine still has to look at (with a due time).",
    "batgate_queue_due_messages": "Queued messages that are due now.",
    "batgate_queue_oldest_due_age_seconds": "Now minus the earliest due time of a due "
    "message (0 when none is due).",
    "batgate_webhook_backlog_events": "Webhook events pending (neither delivered nor given up).",
    "batgate_webhook_oldest_pending_age_seconds": "Now minus the time of the oldest pending "
    "webhook event (0 when none is pending).",
}


class BacklogGauges(Collector):
    def __init__(
        self,
        gauges: Gauges,
        max_age: float,
        timeout: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gauges = gauges
        self._max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._reading: Backlog | None = None
        self._read_at: float | None = None
        self._took = 0.0

    async def refresh(self) -> None:
        """Read the database unless the last reading is recent enough."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            started = self._monotonic()
            try:
                async with asyncio.timeout(self._timeout):  # not wait_for: see Dispatcher._idle
                    self._reading = await self._gauges.backlog(self._clock())
            except Exception as exc:  # a failed read is a gauge value, not an error page
                log.warning("reading the database gauges failed: %r", exc)
                self._reading = None
            self._read_at = self._monotonic()
            self._took = self._read_at - started

    def _fresh(self) -> bool:
        return self._read_at is not None and self._monotonic() - self._read_at < self._max_age

    def describe(self) -> Iterator[Metric]:
        for name, text in _HELP.items():
            yield GaugeMetricFamily(name, text)

    def collect(self) -> Iterator[Metric]:
        if self._read_at is None:
            return
        reading = self._reading
        yield _gauge("batgate_database_up", 0 if reading is None else 1)
        yield _gauge("batgate_gauges_read_seconds", self._took)
        if reading is None:
            return
        now = self._clock()
        yield _gauge("batgate_queue_messages", reading.queued)
        yield _gauge("batgate_queue_due_messages", reading.due)
        yield _gauge("batgate_queue_oldest_due_age_seconds", reading.oldest_due_age(now))
        yield _gauge("batgate_webhook_backlog_events", reading.webhooks_pending)
        yield _gauge("batgate_webhook_oldest_pending_age_seconds", reading.oldest_pending_age(now))


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _HELP[name], value=value)
