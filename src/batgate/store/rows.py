"""Rows to domain objects and back: the store's one place for that conversion."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import orjson
import sqlalchemy as sa

from batgate.domain.lifecycle import Progress
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.domain.notifications import Notification
from batgate.domain.records import Account, MessageRecord
from batgate.domain.status import ChannelStatus, DeliveryStatus
from batgate.store.schema import messages

_DELIVERY = {s.value: s for s in DeliveryStatus}
_CHANNEL = {s.value: s for s in ChannelStatus}
_TYPE = {t.value: t for t in MessageType}
# A message row from a plain DBAPI tuple, with the same attribute names as sa.Row.
MessageRow = namedtuple("MessageRow", [c.name for c in messages.c])  # type: ignore[misc]


def event_row(
    record: MessageRecord,
    n: Notification,
    now: float,
    account_hook: bool,
    reason: str | None = None,
) -> dict[str, Any]:
    """A status event's row; `reason` for a final status (why it ended so)."""
    pending = n.payload is not None and (n.url is not None or account_hook)
    return {
        "message_id": record.id,
        "account_id": record.account_id,
        "status": n.status.value,
        "at": now,
        "payload": n.payload.decode() if pending and n.payload is not None else None,
        "url": n.url,
        "state": "pending" if pending else "none",
        "attempts": 0,
        "next_attempt_at": now if pending else None,
        "reason": reason if n.status.is_final else None,
    }


def account_from_row(row: sa.Row[Any]) -> Account:
    return Account(
        id=row.id,
        username=row.username,
        currency=row.currency,
        webhook_url=row.webhook_url,
        webhook_secret=row.webhook_secret,
        disabled=bool(row.disabled),
        password_hash=row.password_hash,
        webhook_enabled=bool(row.webhook_enabled),
        previous_webhook_secret=row.previous_webhook_secret,
        previous_secret_until=row.previous_secret_until,
        rate_limit=row.rate_limit,
        rate_burst=row.rate_burst,
    )


# The columns a new message is inserted with, in this order (see new_message_values).
NEW_MESSAGE_COLUMNS = (
    "id",
    "messagelist_id",
    "account_id",
    "customer_message_id",
    "recipient",
    "type",
    "chain",
    "callback_url",
    "status",
    "step",
    "steps",
    "attempts",
    "due_at",
    "deadline",
    "bill_currency",
    "version",
    "created_at",
    "updated_at",
    "status_doc",
)
_SCHEDULED = DeliveryStatus.SCHEDULED.value


def new_message_values(
    message_id: str, list_id: int, account_id: int, currency: str, m: NewMessage, now: float
) -> tuple[Any, ...]:
    """A new message's row as a tuple in NEW_MESSAGE_COLUMNS order, its progress that
    of `Progress.new` (built here without the Progress, on the send hot path); the
    columns left out are NULL, or 0 for reclaims, by default."""
    steps = m.steps
    first = steps[0]
    due = now if m.send_at is None or m.send_at < now else m.send_at
    # Progress.new: the first step scheduled, the others not used yet.
    channel_steps = "scheduled" + ",not_used" * (len(steps) - 1)
    doc: dict[str, Any] = {
        "messagelistId": list_id,
        "messageId": message_id,
        "deliverystatus": _SCHEDULED,
        "partscount": first.parts,
    }
    # The status document as domain.documents builds it for this progress (a test
    # keeps the two the same), without a Progress: this is the send hot path.
    if m.customer_message_id is not None:
        doc["customerMessageId"] = m.customer_message_id
    doc["type"] = first.type.value
    doc["to"] = m.to
    if len(steps) > 1:
        doc["fallbacks"] = [{"type": s.type.value, "status": "not_used"} for s in steps[1:]]
        doc["extendedStatuses"] = {
            s.channel.value: "scheduled" if i == 0 else "not_used" for i, s in enumerate(steps)
        }
        doc.update(rate=0.0, rateAmount=0.0, rateCurrency=currency)
        doc.update(billAmount=0.0, billCurrency=currency)
    return (
        message_id,
        list_id,
        account_id,
        m.customer_message_id,
        m.to,
        first.type.value,
        orjson.dumps([s.to_json() for s in steps]).decode(),
        m.callback_url,
        _SCHEDULED,
        0,
        channel_steps,
        0,
        due,
        due + first.ttl,  # the TTL counts from when it may go (SPEC §12)
        currency,
        0,
        now,
        now,
        orjson.dumps(doc).decode(),
    )


def progress_values(p: Progress) -> dict[str, Any]:
    return {
        "status": p.status.value,
        "step": p.step,
        "steps": ",".join(s.value for s in p.steps),
        "attempts": p.attempts,
        "due_at": p.due_at,
        "deadline": p.deadline,
        "receipt": None if p.receipt is None else p.receipt.value,
        "carrier_ref": p.carrier_ref,
        "connector": p.connector,
    }


def message_from_row(row: Any, previous_claim: str | None = None) -> MessageRecord:
    """A message row (an sa.Row or a MessageRow: the same attributes) as a domain object."""
    # Plain dict look-ups: calling an Enum class costs ~10 times as much, and this
    # runs for every status read and every claimed message.
    progress = Progress(
        status=_DELIVERY[row.status],
        step=row.step,
        steps=tuple(_CHANNEL[s] for s in row.steps.split(",")),
        attempts=row.attempts,
        due_at=row.due_at,
        deadline=row.deadline,
        receipt=None if row.receipt is None else _CHANNEL[row.receipt],
        carrier_ref=row.carrier_ref,
        connector=row.connector,
    )
    return MessageRecord(
        id=row.id,
        messagelist_id=row.messagelist_id,
        account_id=row.account_id,
        customer_message_id=row.customer_message_id,
        to=row.recipient,
        type=_TYPE[row.type],
        chain=tuple(Step.from_json(s) for s in orjson.loads(row.chain)),
        callback_url=row.callback_url,
        progress=progress,
        version=row.version,
        rate_micros=row.rate_micros,
        rate_currency=row.rate_currency,
        bill_micros=row.bill_micros,
        bill_currency=row.bill_currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reclaims=row.reclaims,
        previous_claim=previous_claim,
    )
