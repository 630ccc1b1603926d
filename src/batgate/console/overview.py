"""The overview (docs/console.md, page 1): what went final over the last hour, day or
30 days, per channel and per connector, as counts, a chart and the delivery rate; the
time from send to final (p50/p99); the queue and the webhook backlog now. Every count
comes from the rollup (`message_rollup`), never from `messages`; the page reloads its
live part every `console.refresh_seconds`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from batgate.console.charts import line_chart, series_of
from batgate.console.context import Console
from batgate.domain.rollup import percentile_ms
from batgate.store.rollups import Count

# window: (the rollup's scale, seconds a slot, slots, slots a slice, label format)
WINDOWS = {
    "hour": ("m", 60, 60, 1, "%H:%M"),
    "day": ("h", 3600, 24, 1, "%H:%M"),
    "month": ("h", 3600, 720, 24, "%d %b"),
}
STATUSES = (("delivered", "ok"), ("undeliverable", "bad"), ("permanenterror", "failed"))


@dataclass
class Tally:
    """Final messages of one channel or connector, by outcome."""

    name: str
    delivered: int = 0
    undeliverable: int = 0
    failed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.delivered + self.undeliverable + self.failed

    @property
    def rate(self) -> str:
        return f"{100 * self.delivered / self.total:.1f} %" if self.total else "–"

    def add(self, status: str, count: int) -> None:
        if status == "delivered":
            self.delivered += count
        elif status == "undeliverable":
            self.undeliverable += count
        else:
            self.failed += count


def tallies(counts: Iterable[Count], by: str) -> list[Tally]:
    found: dict[str, Tally] = {}
    for c in counts:
        name = (c.channel if by == "channel" else c.connector) or "(none)"
        found.setdefault(name, Tally(name)).add(c.status, c.count)
    return sorted(found.values(), key=lambda t: (-t.total, t.name))


def routes(c: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def overview(request: Request, window: str = "hour") -> Response:
        session = await c.session(request)
        window = window if window in WINDOWS else "hour"
        scale, seconds, slots, per_slice, label = WINDOWS[window]
        now = c.clock()
        last = int(now // seconds)
        first = (last - slots + 1) // per_slice * per_slice
        counts = await c.store.rollups.totals(scale, first)
        points = await c.store.rollups.series(scale, first, per_slice)
        times = await c.store.rollups.times(scale, first)
        backlog = await c.store.gauges.backlog(now)
        slices = list(range(first, last + 1, per_slice))
        by_slice = {(p.slot, p.status): p.count for p in points}
        labels = [_label(slot * seconds, label) for slot in slices]
        title = f"Final messages, last {window}"
        chart = line_chart(labels, series_of(slices, by_slice, STATUSES), title)
        everything = Tally("all")
        for count in counts:
            everything.add(count.status, count.count)
        return c.page(
            request,
            "overview.html",
            session,
            page="overview",
            window=window,
            windows=list(WINDOWS),
            chart=chart,
            total=everything,
            channels=tallies(counts, "channel"),
            connectors=tallies(counts, "connector"),
            p50=_ms(percentile_ms(times, 0.5)),
            p99=_ms(percentile_ms(times, 0.99)),
            backlog=backlog,
            oldest_due=backlog.oldest_due_age(now),
            oldest_webhook=backlog.oldest_pending_age(now),
            read_at=time.strftime("%H:%M:%S", time.gmtime(now)),
        )

    return router


def _label(at: int, fmt: str) -> str:
    return datetime.fromtimestamp(at, UTC).strftime(fmt)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"≤ {value:,.0f} ms" if value < 10_000 else f"≤ {value / 1000:,.1f} s"
