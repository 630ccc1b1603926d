"""Who is calling: the three SPEC §1 methods, with a short cache of verified credentials.

Credentials not in the cache pass the login guard first (api.logins): an address or
a username that failed too often is answered 429 without any check.

The cache keeps an Argon2 verification (tens of milliseconds, by design) off every
request. Entries live `ttl` seconds, so disabling an account or rotating a key
takes effect everywhere within that time; they are keyed by a SHA-256 of the
credentials, never the credentials themselves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping

import anyio

from batgate.api.errors import ApiError, unauthorized
from batgate.api.logins import LoginGuard
from batgate.domain.credentials import key_hash, verify_password
from batgate.domain.records import Account
from batgate.store.manager import Store

_MAX_CACHED = 100_000


class Authenticator:
    def __init__(
        self,
        store: Store,
        ttl: float,
        guard: LoginGuard,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._guard = guard
        self._clock = clock
        self._cache: dict[str, tuple[Account, float]] = {}
        self._pending: dict[str, asyncio.Future[Account | None]] = {}

    async def authenticate(self, headers: Mapping[str, str], address: str = "-") -> Account:
        """The calling account, or ApiError 401 (with `WWW-Authenticate`), or 429 while
        `address` (or the username) has failed too often (api.logins)."""
        key = headers.get("x-authorization-key")
        if key:
            return self._usable(await self._by_key(key, address), address, "api_key")
        try:
            credentials = _basic_credentials(headers.get("authorization"))
        except ApiError:
            self._guard.failed(address, "password", "malformed")
            raise
        if credentials is None:
            raise unauthorized()  # no credentials at all: not a failed login
        username, password = credentials
        if username == "@":
            return self._usable(await self._by_key(password, address), address, "api_key")
        account = await self._by_password(username, password, address)
        return self._usable(account, address, "password", username)

    def known(self, headers: Mapping[str, str]) -> Account | None:
        """The calling account when an `X-Authorization-Key` is in the cache and its
        account may call: at once, without waiting for anything. None means "ask
        `authenticate`" (not in the cache, disabled, another method, no credentials)."""
        key = headers.get("x-authorization-key")
        if not key:
            return None
        account = self._cached("k" + key_hash(key))
        return None if account is None or account.disabled else account

    def _usable(
        self, account: Account | None, address: str, method: str, username: str | None = None
    ) -> Account:
        if account is None or account.disabled:
            reason = "wrong credentials" if account is None else "disabled"
            self._guard.failed(address, method, reason, username)
            raise unauthorized()
        return account

    async def _by_key(self, api_key: str, address: str) -> Account | None:
        digest = key_hash(api_key)
        slot = "k" + digest
        cached = self._cached(slot)
        if cached is not None:
            return cached
        self._guard.admit(address)
        return await self._once(slot, lambda: self._store.account_by_key_hash(digest))

    async def _by_password(self, username: str, password: str, address: str) -> Account | None:
        slot = "b" + hashlib.sha256(f"{username}\0{password}".encode(errors="replace")).hexdigest()
        cached = self._cached(slot)
        if cached is not None:
            return cached
        self._guard.admit(address, username)

        async def verify() -> Account | None:
            account = await self._store.account_by_username(username)
            hashed = None if account is None else account.password_hash
            async with self._guard.password_check():
                ok = await anyio.to_thread.run_sync(verify_password, hashed, password)
            return account if ok else None

        return await self._once(slot, verify)

    async def _once(
        self, slot: str, lookup: Callable[[], Awaitable[Account | None]]
    ) -> Account | None:
        """The cached answer, or one lookup shared by every request that needs it.

        Without the sharing, the moment a busy key's entry expires every request
        in flight would query the store (and hash the password) at once.
        """
        cached = self._cached(slot)
        if cached is not None:
            return cached
        pending = self._pending.get(slot)
        if pending is None:
            pending = asyncio.ensure_future(lookup())
            self._pending[slot] = pending
            pending.add_done_callback(lambda _: self._pending.pop(slot, None))
            account = await asyncio.shield(pending)
            return self._remember(slot, account)
        return await asyncio.shield(pending)

    def _cached(self, slot: str) -> Account | None:
        hit = self._cache.get(slot)
        if hit is None:
            return None
        account, expires = hit
        if self._clock() >= expires:
            del self._cache[slot]
            return None
        return account

    def _remember(self, slot: str, account: Account | None) -> Account | None:
        if account is not None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[slot] = (account, self._clock() + self._ttl)
        return account


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(
            401,
            "UNAUTHORIZED",
            "malformed Basic credentials",
            {"WWW-Authenticate": 'Basic realm="batgate"'},
        ) from None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None
