"""Accounts and inbound messages put straight into a server's database, through the real
store (imported by name, like client_support).

The SDK has no way to make a phone send an inbound message, so the tests make them
as a carrier's connector would hand them over: `store.inbox.receive` with an
`Arrival` owned by the account (which owns the number it came to, as `batgate
accounts add-number` makes it). Each test gets an account of its own, so what its
inbox holds is exactly what it seeded.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from batgate.domain.credentials import key_hash, new_webhook_secret
from batgate.domain.inbound import Arrival, InboundText, StoredInbound
from batgate.domain.records import Account
from batgate.store.manager import Store

T = TypeVar("T")

REPLY_WINDOW = 7 * 86_400  # how far back inReplyTo looks (SPEC §10)
PHONE = "+380501234567"  # the sandbox delivers to it
_numbers = itertools.count(1)


def with_store(database_url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run `action` on a store of `database_url`, in a loop of its own."""

    async def main() -> T:
        store = Store.connect(database_url, pool_size=1)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(main())


@dataclass(frozen=True)
class Inbox:
    """An account of its own with a number it owns; `receive` seeds its inbound messages."""

    database_url: str
    account: Account
    api_key: str
    number: str

    @property
    def webhook_secret(self) -> str:
        return self.account.webhook_secret

    def receive(
        self,
        *texts: str,
        sender: str = PHONE,
        parts: int = 1,
        incomplete: bool = False,
        connector: str = "smsc-test",
    ) -> list[StoredInbound]:
        """One inbound message per text, from `sender` to the account's number, oldest first."""
        arrivals = [
            Arrival(
                connector,
                InboundText(sender, self.number, text, parts=parts, incomplete=incomplete),
                account=self.account,
            )
            for text in texts
        ]
        now = time.time()
        return with_store(
            self.database_url, lambda store: store.inbox.receive(arrivals, now, now - REPLY_WINDOW)
        )


def make_inbox(database_url: str, webhook_url: str | None = None) -> Inbox:
    """A new account (API key, webhook URL and secret known) owning a number of its own."""
    n = next(_numbers)
    username = f"inbox{n}-{secrets.token_hex(3)}"
    api_key = secrets.token_urlsafe(24)
    number = f"+38044{secrets.randbelow(10**7):07d}"

    async def make(store: Store) -> Account:
        account = await store.create_account(
            username, key_hash(api_key), None, webhook_url, new_webhook_secret(), "USD"
        )
        await store.inbox.add_number(account.id, number, time.time())
        return account

    account = with_store(database_url, make)
    return Inbox(database_url, account, api_key, number)
