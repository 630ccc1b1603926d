"""What the store hands out: accounts and stored messages as plain domain objects."""

from __future__ import annotations

from dataclasses import dataclass

from batgate.domain.lifecycle import Progress
from batgate.domain.messages import MessageType, Step


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    currency: str
    webhook_url: str | None
    webhook_secret: str
    disabled: bool
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    messagelist_id: int
    account_id: int
    customer_message_id: str | None
    to: str
    type: MessageType
    chain: tuple[Step, ...]
    callback_url: str | None
    progress: Progress
    version: int
    rate_micros: int | None
    rate_currency: str | None
    bill_micros: int | None
    bill_currency: str
    created_at: float
    updated_at: float

    @property
    def current(self) -> Step:
        return self.chain[self.progress.step]
