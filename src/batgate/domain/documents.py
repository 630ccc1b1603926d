"""The status document of a message (SPEC §3): what `GET /bat/message/{id}` answers. Pure.

It is built whenever a message is written — when it is stored, and with every
change of its progress, in the same transaction — and stored with it, so that a
lookup reads it by primary key and answers it as it is (store.manager, api.status).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from batgate.domain.lifecycle import Progress
from batgate.domain.messages import MessageType, Step
from batgate.domain.pricing import from_micros
from batgate.domain.records import MessageRecord


def status_document(
    messagelist_id: int,
    message_id: str,
    customer_message_id: str | None,
    to: str,
    message_type: MessageType,
    chain: Sequence[Step],
    p: Progress,
    rate_micros: int | None,
    rate_currency: str | None,
    bill_micros: int | None,
    bill_currency: str,
) -> dict[str, Any]:
    parts = chain[p.step].parts
    doc: dict[str, Any] = {
        "messagelistId": messagelist_id,
        "messageId": message_id,
        "deliverystatus": p.status.value,
        "partscount": parts,
    }
    if p.status.is_final:
        doc["cost"] = from_micros(bill_micros or 0)
    if customer_message_id is not None:
        doc["customerMessageId"] = customer_message_id
    doc["type"] = message_type.value
    doc["to"] = to
    if len(chain) > 1:
        doc["fallbacks"] = [
            {"type": step.type.value, "status": p.steps[i].value}
            for i, step in enumerate(chain[1:], start=1)
        ]
        doc["extendedStatuses"] = {
            step.channel.value: p.steps[i].value for i, step in enumerate(chain)
        }
        rate = rate_micros or 0
        doc["rate"] = from_micros(rate)
        doc["rateAmount"] = from_micros(rate * parts)
        doc["rateCurrency"] = rate_currency or bill_currency
        doc["billAmount"] = from_micros(bill_micros or 0)
        doc["billCurrency"] = bill_currency
    return doc


def status_view(r: MessageRecord) -> dict[str, Any]:
    """The document of a record as read."""
    return status_document(
        r.messagelist_id,
        r.id,
        r.customer_message_id,
        r.to,
        r.type,
        r.chain,
        r.progress,
        r.rate_micros,
        r.rate_currency,
        r.bill_micros,
        r.bill_currency,
    )


def encoded(document: dict[str, Any]) -> str:
    """As stored: compact JSON text (orjson, as the answers are written)."""
    return orjson.dumps(document).decode()
