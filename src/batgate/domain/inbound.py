"""Inbound messages (SPEC §10): what a carrier brings from a phone to one of our numbers.

Pure data: no I/O. A carrier's connector reads its own wire form (SMPP `deliver_sm`
and `data_sm`, an HTTP carrier's call, an upstream's `inbound` event) into
:class:`InboundText`, and hands it to the engine's :class:`InboundSink`
(channels.base), which stores it, finds its owner and tells the owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from batgate.domain.messages import NewMessage
from batgate.domain.notifications import rfc3339
from batgate.domain.optout import Keyword
from batgate.domain.records import Account


@dataclass(frozen=True, slots=True)
class InboundText:
    """One inbound message, whole (its parts put together) or as much of it as came.

    `sender`: the phone's number, E.164 with `+` when the carrier said it is
    international, else as the carrier wrote it. `recipient`: our number or sender
    name it was sent to, as the carrier wrote it (`+` for international numbers).
    `parts`: how many parts it came in; `incomplete`: some parts never came (the
    reassembly timed out), and `text` is those that did, in order.
    `carrier_id`: the carrier's own id of it, where it gave one.
    """

    sender: str
    recipient: str
    text: str
    parts: int = 1
    incomplete: bool = False
    carrier_id: str | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    """An inbound message with what is decided about it before it is stored: its owner
    (None: unrouted), what its text does to the sender's opt-out (SPEC §11), and the
    auto-reply to send back, if any."""

    connector: str
    text: InboundText
    account: Account | None = None
    keyword: Keyword | None = None
    reply: NewMessage | None = None


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """An inbound message as kept: whose (None: unrouted, no account owns its
    recipient), its id, and the message of the account it answers, if any."""

    id: int
    account_id: int | None
    sender: str
    recipient: str
    text: str
    parts: int
    incomplete: bool
    connector: str
    received_at: float
    in_reply_to: str | None


def inbound_document(m: StoredInbound) -> dict[str, Any]:
    """The SPEC §10 form of an inbound message, as `GET /bat/inbound` lists it and its
    webhook carries it (with `"event": "inbound"` first)."""
    return {
        "inboundId": m.id,
        "from": m.sender,
        "to": m.recipient,
        "text": m.text,
        "receivedAt": rfc3339(m.received_at),
        "parts": m.parts,
        "incomplete": m.incomplete,
        "connector": m.connector,
        "inReplyTo": m.in_reply_to,
    }


def webhook_body(m: StoredInbound) -> bytes:
    return orjson.dumps({"event": "inbound", **inbound_document(m)})


def webhook_id(inbound_id: int) -> str:
    return f"in_{inbound_id}"


def thread_key(account_id: int, sender: str) -> str:
    """What an inbound event is ordered by in the webhook outbox (in the place of a
    message id: one account's events from one number go out in order)."""
    return f"in:{account_id}:{sender}"[:32]


def e164_of(sender: str) -> str | None:
    """The sender as an E.164 number (what messages are sent to), where it is one."""
    if sender.startswith("+") and sender[1:].isdigit() and 8 <= len(sender) - 1 <= 15:
        return sender
    if sender.isdigit() and 8 <= len(sender) <= 15 and sender[0] != "0":
        return "+" + sender  # an international number written without its "+"
    return None


def spellings(recipient: str) -> tuple[str, ...]:
    """The ways an owned number may be written for this recipient: as the carrier wrote
    it, and with or without the `+` of an international number (carriers differ)."""
    if recipient.startswith("+") and recipient[1:].isdigit():
        return (recipient, recipient[1:])
    if recipient.isdigit() and len(recipient) >= 8:
        return (recipient, "+" + recipient)
    return (recipient,)


_OWNED = re.compile(r"\+[1-9][0-9]{7,14}|[0-9]{3,15}|(?=[0-9]*[A-Za-z])[A-Za-z0-9]{1,11}")


def owned_number_problem(value: str) -> str | None:
    """Why `value` cannot be owned (None: it can): an E.164 number, a short code or
    national number of 3-15 digits, or an alphanumeric sender of 1-11 characters."""
    if _OWNED.fullmatch(value) is None:
        return (
            f"{value!r} is not a number or sender: '+' and 8-15 digits, 3-15 digits "
            "(a short code), or 1-11 letters and digits with at least one letter"
        )
    return None
