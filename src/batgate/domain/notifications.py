"""Webhook events: what is sent when a message's status changes (SPEC §4). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from batgate.domain.lifecycle import Progress
from batgate.domain.pricing import from_micros
from batgate.domain.records import MessageRecord
from batgate.domain.status import DeliveryStatus


@dataclass(frozen=True, slots=True)
class Notification:
    """An event to store with a status change; `payload` None: no webhook to send."""

    status: DeliveryStatus
    payload: bytes | None = None
    url: str | None = None  # the message's callbackUrl; None: the account's URL


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A stored event claimed for delivery."""

    id: int
    message_id: str  # or, for an inbound event, the order it keeps (domain.inbound)
    account_id: int
    status: str  # a deliverystatus, or "inbound"
    payload: bytes
    url: str | None
    attempts: int
    at: float
    ref: str | None = None  # its own webhook-id (an inbound event's)

    @property
    def webhook_id(self) -> str:
        if self.ref is not None:
            return self.ref
        # A message enters each status at most once, so this is unique and stable.
        return f"evt_{self.message_id}_{self.status}"


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def webhook_payload(
    record: MessageRecord,
    progress: Progress,
    status: DeliveryStatus,
    at: float,
    bill_micros: int | None,
) -> bytes:
    """The SPEC §4 body for `status`, entered at `at`, as of `progress`."""
    body: dict[str, Any] = {
        "messageId": record.id,
        "deliverystatus": status.value,
        "timestamp": rfc3339(at),
    }
    if status.is_final:
        body["cost"] = from_micros(bill_micros or 0)
    body["messagelistId"] = record.messagelist_id
    body["customerMessageId"] = record.customer_message_id
    body["partscount"] = record.chain[progress.step].parts
    if len(record.chain) > 1:
        body["extendedStatuses"] = {
            step.channel.value: progress.steps[i].value for i, step in enumerate(record.chain)
        }
    return orjson.dumps(body)


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt to deliver an event, and the event's state after it.

    `state`: `delivered`, `pending` (to be tried again at `next_attempt_at`) or
    `failed` (retries ran out, or the endpoint said it is gone).
    """

    event_id: int
    at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    state: str
    attempts: int
    next_attempt_at: float | None


@dataclass(frozen=True, slots=True)
class EndpointView:
    """An account's webhook endpoint as operators see it (the console)."""

    username: str
    url: str
    enabled: bool
    disabled_reason: str | None
    pending: int
    failing: int  # pending after a failed attempt
    failed: int  # given up


@dataclass(frozen=True, slots=True)
class EventView:
    """An outbox event as operators see it (`batgate webhooks list`)."""

    id: int
    webhook_id: str
    message_id: str
    username: str
    status: str
    state: str
    attempts: int
    at: float
    next_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    url: str | None
