"""Helpers shared by the integration tests (imported by name: tests are not a package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batgate.domain.credentials import key_hash, new_webhook_secret
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.domain.records import Account
from batgate.store.manager import Store


class Clock:
    """A clock the test moves by hand: time only passes when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def db_url(path: Path) -> str:
    return f"sqlite:///{path}"


async def make_account(
    store: Store, username: str = "alice", currency: str = "USD", key: str | None = None
) -> Account:
    return await store.create_account(
        username=username,
        api_key_hash=key_hash(key or f"key-of-{username}"),
        password_hash=None,
        webhook_url=None,
        webhook_secret=new_webhook_secret(),
        currency=currency,
    )


def new_message(
    to: str = "+380501234567",
    *types: MessageType,
    ttl: int = 86_400,
    parts: int = 1,
    customer_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> NewMessage:
    """A validated-shape message; `types` is the chain (default: one SMS step)."""
    chain = types or (MessageType.SMS,)
    steps = tuple(
        Step(
            type=t,
            to=to,
            sender="Shop",
            text=f"hello over {t.value}",
            message_data=data if i == 0 else None,
            ttl=ttl,
            parts=parts if t is MessageType.SMS else 1,
        )
        for i, t in enumerate(chain)
    )
    return NewMessage(customer_message_id=customer_id, steps=steps)
