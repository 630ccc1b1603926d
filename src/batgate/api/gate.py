"""Admission of a request: authenticate, then charge the account's rate limit."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from batgate.api.auth import Authenticator
from batgate.api.errors import ApiError
from batgate.api.ratelimit import RateLimiter
from batgate.domain.records import Account
from batgate.observability.requests import note_account


class Gate:
    def __init__(self, auth: Authenticator, limiter: RateLimiter | None) -> None:
        self._auth = auth
        self._limiter = limiter

    async def admit(self, headers: Mapping[str, str], address: str = "-") -> Account:
        """The calling account; ApiError 401 or 429 when it may not pass. `address`: the
        client's (uvicorn puts the proxy's X-Forwarded-For there when it trusts it)."""
        account = await self._auth.authenticate(headers, address)
        note_account(account.id)  # for the access log
        if self._limiter is not None:
            await self._limiter.take(account.id, own_limit(account))
        return account

    def admit_now(self, headers: Mapping[str, str]) -> Account | None:
        """`admit` when it needs nothing but this process's memory (a cached API key,
        a token in hand); None means "await `admit`", which decides every other case."""
        account = self._auth.known(headers)
        if account is None:
            return None
        if self._limiter is not None and not self._limiter.take_now(account.id):
            return None
        note_account(account.id)
        return account

    async def admit_body(self, headers: Mapping[str, str], address: str = "-") -> Account:
        """`admit`, for a request whose body acts (a send): with Basic credentials it
        must say `Content-Type: application/json` (415 otherwise, SPEC §2). A browser
        may attach cached Basic credentials to a cross-site form post, whose content
        type is never JSON; no cross-site request can carry `X-Authorization-Key`."""
        account = await self.admit(headers, address)
        if not headers.get("x-authorization-key") and not _is_json(headers.get("content-type")):
            raise ApiError(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "with Basic credentials the body must be sent as Content-Type: application/json",
            )
        return account


def own_limit(account: Account) -> tuple[float, int] | None:
    """The account's own (rate, burst), where the operator set one."""
    if account.rate_limit is None:
        return None
    burst = account.rate_burst or max(1, int(account.rate_limit * 2))
    return account.rate_limit, burst


def client_address(scope: MutableMapping[str, Any]) -> str:
    """The client's address from an ASGI scope, or "-" when the server gave none."""
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json"
