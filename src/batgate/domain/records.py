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
    webhook_enabled: bool = True
    previous_webhook_secret: str | None = None
    previous_secret_until: float | None = None
    # The account's own rate limit (requests/s, burst); None: the gateway's.
    rate_limit: float | None = None
    rate_burst: int | None = None

    def signing_secrets(self, now: float) -> list[str]:
        """The current webhook secret, and the previous one while a rotation overlaps."""
        secrets = [self.webhook_secret]
        if self.previous_webhook_secret and (self.previous_secret_until or 0) > now:
            secrets.append(self.previous_webhook_secret)
        return secrets


@dataclass(frozen=True, slots=True)
class StoryLine:
    """One line of a message's story: a status it entered (with the reason of a final
    one), or a note on a step (its channel, and why an attempt failed or it ended)."""

    at: float
    status: str | None
    step: int | None
    channel: str | None
    reason: str | None


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
    # Claims after a lease ran out with nothing written: each may re-send a hand-over.
    reclaims: int = 0
    # On a record just claimed: the worker whose lease on it ran out, if any.
    previous_claim: str | None = None

    @property
    def current(self) -> Step:
        return self.chain[self.progress.step]


@dataclass(frozen=True, slots=True)
class ConnectorReport:
    """What one process sees of one connector: its state (`up`, `down`: not bound or
    refused, `circuit-open`, `drained`), its bound links (None for a kind without),
    hand-overs in flight, sent and failed in the last minute, and the last error."""

    connector: str
    state: str
    links: int | None
    in_flight: int
    sent_minute: int
    errors_minute: int
    last_error: str | None
    last_error_at: float | None
    worker: str = ""
    reported_at: float = 0.0
