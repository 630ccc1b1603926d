"""The SMSBAT API as an upstream speaks it: what batgate sends, what it reads back. Pure.

One step of a message is one upstream message: its `messageData` unchanged, no
`fallback` (batgate keeps the chain, so that every step's status is known), and
`customerMessageId` = `{messageId}.{step}`, which the upstream echoes in its status
documents and webhooks: so a status or a cost names the step it is for even when it
arrives before the send's answer was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batgate.channels.base import Outbound
from batgate.domain.inbound import InboundText
from batgate.domain.outcomes import CarrierCost, CarrierId, PartReceipt
from batgate.domain.status import ChannelStatus

# The upstream's final statuses, and the step's channel status each gives.
FINAL = {
    "delivered": ChannelStatus.DELIVERED,
    "undeliverable": ChannelStatus.UNDELIVERABLE,
    "permanenterror": ChannelStatus.PERMANENTERROR,
}


class Unreadable(ValueError):
    """The upstream answered something that is not the SMSBAT API's shape."""


def upstream_message(message: Outbound) -> dict[str, Any]:
    """The SMSBAT message for one step of ours."""
    step = message.step
    doc: dict[str, Any] = {
        "from": step.sender,
        "to": step.to,
        "type": step.type.value,
        "ttl": step.ttl,
        "customerMessageId": reference(message.message_id, message.index),
    }
    if step.text is not None:
        doc["text"] = step.text
    if step.message_data is not None:
        doc["messageData"] = step.message_data
    return doc


def reference(message_id: str, index: int) -> str:
    return f"{message_id}.{index}"


def step_of(customer_message_id: object) -> tuple[str, int] | None:
    """The message id and step a `customerMessageId` of ours names; None if not ours."""
    if not isinstance(customer_message_id, str):
        return None
    message_id, dot, index = customer_message_id.rpartition(".")
    if not dot or not message_id or not index.isascii() or not index.isdigit():
        return None
    return message_id, int(index)


@dataclass(frozen=True, slots=True)
class Taken:
    """The upstream accepted the message: its id there."""

    upstream_id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The upstream rejected the message, with its error code and message."""

    code: str
    message: str


def send_answer(doc: Any, count: int) -> list[Taken | Refused]:
    """The upstream's answer to a `POST /bat/messagelist` of `count` messages, one
    entry per message in order; Unreadable if it is not that."""
    entries = doc.get("messages") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or len(entries) != count:
        raise Unreadable(f"expected {count} entries in `messages`, got {_shape(entries)}")
    answers: list[Taken | Refused] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise Unreadable(f"messages[{number}] is {_shape(entry)}, not an object")
        status, upstream_id = entry.get("status"), entry.get("messageId")
        if status == "accepted" and isinstance(upstream_id, str | int) and str(upstream_id):
            answers.append(Taken(str(upstream_id)))
        elif status == "rejected":
            said = entry.get("error")
            error: dict[str, Any] = said if isinstance(said, dict) else {}
            code = str(error.get("code") or "REJECTED")
            answers.append(Refused(code, str(error.get("message") or "rejected by the upstream")))
        else:
            raise Unreadable(f"messages[{number}]: status {status!r}, messageId {upstream_id!r}")
    return answers


@dataclass(frozen=True, slots=True)
class News:
    """What one status document or webhook event of the upstream says: a final
    receipt for the step it carried, and what it billed for it."""

    receipt: PartReceipt | None
    cost: CarrierCost | None


def news_of(doc: Any, currency: str) -> News:
    """From a status document (`GET /bat/message/{id}`, an entry of the bulk read) or
    a webhook event: its final status, if it is final, and its cost then. The cost is
    `billAmount` in `billCurrency` where given, else `cost` in `currency` (the
    upstream account's, as configured)."""
    if not isinstance(doc, dict):
        raise Unreadable(f"a status is an object, not {_shape(doc)}")
    upstream_id, status = doc.get("messageId"), doc.get("deliverystatus")
    if not isinstance(upstream_id, str | int) or not isinstance(status, str):
        raise Unreadable("a status has a messageId and a deliverystatus")
    final = FINAL.get(status)
    if final is None:
        return News(None, None)
    receipt = PartReceipt(CarrierId(str(upstream_id)), final, f"upstream status {status}")
    step = step_of(doc.get("customerMessageId"))
    amount = doc.get("billAmount", doc.get("cost"))
    if step is None or not isinstance(amount, int | float) or isinstance(amount, bool):
        return News(receipt, None)
    billed = doc.get("billCurrency") if "billAmount" in doc else None
    unit = billed if isinstance(billed, str) and len(billed) == 3 else currency
    return News(receipt, CarrierCost(step[0], step[1], float(amount), unit))


def inbound_of(doc: Any) -> InboundText:
    """An upstream batgate's `inbound` event (SPEC §10): the message it brings, as the
    upstream wrote it (its sender, the number it came to, the text and its parts)."""
    fields = {name: doc.get(name) for name in ("from", "to", "text")}
    if not all(isinstance(value, str) for value in fields.values()):
        raise Unreadable("an inbound event has strings `from`, `to` and `text`")
    parts = doc.get("parts")
    inbound_id = doc.get("inboundId")
    return InboundText(
        sender=str(fields["from"]),
        recipient=str(fields["to"]),
        text=str(fields["text"]),
        parts=parts if isinstance(parts, int) and not isinstance(parts, bool) and parts > 0 else 1,
        incomplete=doc.get("incomplete") is True,
        carrier_id=None if inbound_id is None else str(inbound_id),
    )


def statuses_answer(doc: Any) -> Sequence[Any]:
    """The entries of a bulk status read's answer (`{"messages": [...]}`)."""
    entries = doc.get("messages") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise Unreadable(f"expected a `messages` list, got {_shape(entries)}")
    return entries


def _shape(value: object) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__
