"""Admission of a request: authenticate, then charge the account's rate limit."""

from __future__ import annotations

from collections.abc import Mapping

from batgate.api.auth import Authenticator
from batgate.api.ratelimit import RateLimiter
from batgate.domain.records import Account
from batgate.observability.requests import note_account


class Gate:
    def __init__(self, auth: Authenticator, limiter: RateLimiter | None) -> None:
        self._auth = auth
        self._limiter = limiter

    async def admit(self, headers: Mapping[str, str]) -> Account:
        """The calling account; ApiError 401 or 429 when it may not pass."""
        account = await self._auth.authenticate(headers)
        note_account(account.id)  # for the access log
        if self._limiter is not None:
            await self._limiter.take(account.id)
        return account
