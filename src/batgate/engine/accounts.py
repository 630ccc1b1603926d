"""Accounts as the engine sees them: cached for a few seconds, by id.

The engine needs an account's webhook URL and secrets for every status change
and every webhook; a short cache keeps that off the database while changes
(`accounts set-webhook`, a secret rotation) still reach every process quickly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from batgate.domain.records import Account
from batgate.store.manager import Store


class AccountCache:
    def __init__(
        self, store: Store, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[int, tuple[Account | None, float]] = {}

    async def get(self, account_id: int) -> Account | None:
        hit = self._cache.get(account_id)
        now = self._clock()
        if hit is not None and hit[1] > now:
            return hit[0]
        account = await self._store.account_by_id(account_id)
        self._cache[account_id] = (account, now + self._ttl)
        return account

    def forget(self, account_id: int) -> None:
        self._cache.pop(account_id, None)
