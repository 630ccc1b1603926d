"""The rate table in force: configured rates, overridden by rates set in the database.

Re-read from the store every `refresh` seconds, so `batgate rates set` reaches
every running worker without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from batgate.config import RateEntry
from batgate.domain.messages import Channel
from batgate.domain.pricing import Rate, RateTable, to_micros
from batgate.store.manager import Store


def configured_rates(entries: Iterable[RateEntry]) -> list[Rate]:
    return [Rate(e.channel, e.prefix, to_micros(e.price), e.currency) for e in entries]


class RateBook:
    def __init__(
        self,
        store: Store,
        configured: list[Rate],
        refresh: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._configured = configured
        self._refresh = refresh
        self._clock = clock
        self._table = RateTable(configured)
        self._loaded_at: float | None = None

    async def table(self) -> RateTable:
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at >= self._refresh:
            stored = await self._store.list_rates()
            self._table = RateTable([*self._configured, *stored])
            self._loaded_at = now
        return self._table


def unpriced_channels(table: RateTable) -> list[str]:
    """The channels without any rate: their messages cost nothing."""
    priced = {rate.channel for rate in table.entries()}
    return [c.value for c in Channel if c.value not in priced]
